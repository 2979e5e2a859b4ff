from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from server import migrations
from server.sql import MIGRATIONS_DIR
from tests.conftest import TestDatabase


@pytest.fixture
def migration_dir(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target)
    return target


async def test_a_cloned_database_has_every_migration_recorded(database: TestDatabase) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        rows = await conn.fetch("SELECT version, checksum FROM tipline.schema_migrations")
        assert await migrations.pending_for(conn) == []
    finally:
        await conn.close()
    on_disk = migrations.discover()
    assert [(r["version"], r["checksum"]) for r in rows] == [
        (m.version, m.checksum) for m in on_disk
    ]


async def test_migrate_applies_only_new_files_in_order(
    database: TestDatabase, migration_dir: Path
) -> None:
    (migration_dir / "9998_probe_a.sql").write_text("CREATE TABLE probe (step int);")
    (migration_dir / "9999_probe_b.sql").write_text("INSERT INTO probe VALUES (2);")
    conn = await asyncpg.connect(database.admin_url)
    try:
        applied = await migrations.migrate(conn, migration_dir)
        assert [m.version for m in applied] == [9998, 9999]
        assert await migrations.migrate(conn, migration_dir) == []
        owner = await conn.fetchval(
            "SELECT tableowner FROM pg_tables WHERE schemaname = 'tipline' AND tablename = 'probe'"
        )
        assert owner == "tipline_owner"
        assert await conn.fetchval("SELECT step FROM tipline.probe") == 2
    finally:
        await conn.close()


async def test_a_failing_migration_is_rolled_back_whole(
    database: TestDatabase, migration_dir: Path
) -> None:
    (migration_dir / "9999_broken.sql").write_text(
        "CREATE TABLE half_done (x int);\nSELECT no_such_function();"
    )
    conn = await asyncpg.connect(database.admin_url)
    try:
        with pytest.raises(migrations.MigrationError, match=r"9999_broken\.sql"):
            await migrations.migrate(conn, migration_dir)
        assert await conn.fetchval("SELECT to_regclass('tipline.half_done')") is None
        assert 9999 not in {
            r["version"] for r in await conn.fetch("SELECT version FROM tipline.schema_migrations")
        }
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(
    database: TestDatabase, migration_dir: Path
) -> None:
    first = sorted(migration_dir.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    conn = await asyncpg.connect(database.admin_url)
    try:
        with pytest.raises(migrations.MigrationError, match="changed after it was applied"):
            await migrations.migrate(conn, migration_dir)
    finally:
        await conn.close()


async def test_a_database_newer_than_the_code_is_refused(
    database: TestDatabase, migration_dir: Path
) -> None:
    sorted(migration_dir.glob("*.sql"))[-1].unlink()
    conn = await asyncpg.connect(database.admin_url)
    try:
        with pytest.raises(migrations.MigrationError, match="older than the database"):
            await migrations.pending_for(conn, migration_dir)
    finally:
        await conn.close()


def test_misnamed_migration_files_are_refused(migration_dir: Path) -> None:
    (migration_dir / "12_short.sql").write_text("SELECT 1;")
    with pytest.raises(migrations.MigrationError, match="NNNN_snake_case"):
        migrations.discover(migration_dir)


async def test_the_app_role_owns_nothing_and_cannot_bypass_rls(database: TestDatabase) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        role = await conn.fetchrow(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb"
            " FROM pg_roles WHERE rolname = 'tipline_app'"
        )
        assert role is not None
        assert not any(role.values())
        owned = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = 'tipline_app'"
        )
        assert owned == 0
        member_of_owner = await conn.fetchval(
            "SELECT pg_has_role('tipline_app', 'tipline_owner', 'USAGE')"
        )
        assert member_of_owner is False
    finally:
        await conn.close()


async def test_the_app_role_cannot_change_the_schema(database: TestDatabase) -> None:
    conn = await asyncpg.connect(database.app_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE tipline.intruder (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE public.intruder (x int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM tipline.schema_migrations")
    finally:
        await conn.close()
