"""Typed wrappers over sql/queries/backup.sql (run as the backup or restore role)."""

from __future__ import annotations

import msgspec

from server.db import Connection
from server.sql import query, to_struct


class StoredObject(msgspec.Struct, frozen=True):
    storage_key: str
    storage_state: str
    upload_length: int
    ciphertext_sha256: str


async def export_snapshot(conn: Connection) -> str:
    snapshot: str = await conn.fetchval(query("backup.export_snapshot"))
    return snapshot


async def stored_objects(conn: Connection) -> list[StoredObject]:
    return [to_struct(r, StoredObject) for r in await conn.fetch(query("backup.stored_objects"))]


async def counts(conn: Connection) -> dict[str, int]:
    row = await conn.fetchrow(query("backup.counts"))
    return {key: int(value) for key, value in row.items()}


async def user_relations(conn: Connection) -> int:
    found: int = await conn.fetchval(query("backup.user_relations"))
    return found


async def ensure_roles(conn: Connection) -> None:
    await conn.execute(query("backup.ensure_roles"))
