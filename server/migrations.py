"""Forward-only migrations: numbered plain-SQL files in `sql/migrations/`, applied in order.

Each file runs in its own transaction as `tipline_owner` and is recorded with its SHA-256, so a
file edited after it was applied is refused instead of silently diverging between installations.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import asyncpg
import msgspec

from server.sql import MIGRATIONS_DIR, SQL_DIR, query, to_struct

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(RuntimeError):
    pass


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    checksum: str
    path: Path

    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")


class AppliedMigration(msgspec.Struct, frozen=True):
    version: int
    name: str
    checksum: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_case.sql")
        migrations.append(
            Migration(
                version=int(match["version"]),
                name=match["name"],
                checksum=hashlib.sha256(path.read_bytes()).hexdigest(),
                path=path,
            )
        )
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return migrations


def pending(migrations: list[Migration], applied: list[AppliedMigration]) -> list[Migration]:
    """What is left to apply; refuses a database that has diverged from the files."""
    on_disk = {m.version: m for m in migrations}
    for done in applied:
        current = on_disk.get(done.version)
        if current is None:
            raise MigrationError(
                f"migration {done.version:04d}_{done.name} is applied in the database but missing "
                "from sql/migrations: this code is older than the database"
            )
        if current.checksum != done.checksum:
            raise MigrationError(
                f"migration {current.path.name} was changed after it was applied "
                f"(applied sha256 {done.checksum[:12]}…, file sha256 {current.checksum[:12]}…); "
                "add a new migration instead of editing an applied one"
            )
    done_versions = {a.version for a in applied}
    return [m for m in migrations if m.version not in done_versions]


async def migrate(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Applies every pending migration; returns those it applied."""
    migrations = discover(directory)
    await conn.execute(query("migrations.lock"))
    try:
        async with conn.transaction():
            await conn.execute((SQL_DIR / "bootstrap.sql").read_text(encoding="utf-8"))
        todo = pending(migrations, await _applied(conn))
        for migration in todo:
            async with conn.transaction():
                await conn.execute(query("migrations.become_owner"))
                try:
                    await conn.execute(migration.sql())
                except asyncpg.PostgresError as exc:
                    raise MigrationError(f"{migration.path.name}: {exc}") from exc
                await conn.execute(
                    query("migrations.record"),
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return todo
    finally:
        await conn.execute(query("migrations.unlock"))


async def pending_for(
    conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR
) -> list[Migration]:
    """What `migrate` would apply now, checked read-only (the app role may call this)."""
    return pending(discover(directory), await _applied(conn))


async def _applied(conn: asyncpg.Connection) -> list[AppliedMigration]:
    return [to_struct(r, AppliedMigration) for r in await conn.fetch(query("migrations.applied"))]
