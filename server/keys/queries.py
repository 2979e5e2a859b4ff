"""Typed wrappers over sql/queries/keys.sql; the only callers of those statements."""

from __future__ import annotations

from uuid import UUID

import msgspec

from server.db import Connection
from server.sql import query, to_struct


class StoredDirectory(msgspec.Struct, frozen=True):
    version: int
    directory: bytes
    signature: bytes


class EntryAccount(msgspec.Struct, frozen=True):
    id: UUID
    role: str
    status: str
    age_recipient: str | None


class DeviceThumbprint(msgspec.Struct, frozen=True):
    account_id: UUID
    thumbprint: str


async def lock_directories(conn: Connection) -> None:
    await conn.execute(query("keys.lock_directories"))


async def current_directory(conn: Connection) -> StoredDirectory | None:
    row = await conn.fetchrow(query("keys.current_directory"))
    return to_struct(row, StoredDirectory) if row else None


async def directory_at(conn: Connection, version: int) -> bytes | None:
    directory: bytes | None = await conn.fetchval(query("keys.directory_at"), version)
    return directory


async def current_version(conn: Connection) -> int | None:
    version: int | None = await conn.fetchval(query("keys.current_version"))
    return version


async def entry_accounts(conn: Connection, account_ids: list[UUID]) -> list[EntryAccount]:
    rows = await conn.fetch(query("keys.entry_accounts"), account_ids)
    return [to_struct(row, EntryAccount) for row in rows]


async def live_device_thumbprints(
    conn: Connection, account_ids: list[UUID]
) -> list[DeviceThumbprint]:
    rows = await conn.fetch(query("keys.live_device_thumbprints"), account_ids)
    return [to_struct(row, DeviceThumbprint) for row in rows]


async def insert_directory(
    conn: Connection, version: int, directory: bytes, signature: bytes, published_by: UUID
) -> None:
    await conn.execute(query("keys.insert_directory"), version, directory, signature, published_by)
