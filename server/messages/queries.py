"""Typed wrappers over sql/queries/messages.sql."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.messages.schemas import InboxItem
from server.sql import query, to_struct


class Stored(msgspec.Struct, frozen=True):
    report_id: UUID
    author_id: UUID
    ciphertext_sha256: str
    signature: str
    received_at: datetime


class ThreadRow(msgspec.Struct, frozen=True):
    id: UUID
    report_id: UUID
    author_id: UUID
    author_role: str
    device_id: UUID
    sent_at: str
    received_at: datetime
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str
    device_jwk: str


class NewMessage(msgspec.Struct, frozen=True):
    id: UUID
    report_id: UUID
    author_id: UUID
    author_role: str
    device_id: UUID
    device_key: str
    sent_at: str
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str


async def report_owner(conn: Connection, report_id: UUID) -> UUID | None:
    owner: UUID | None = await conn.fetchval(query("messages.report_owner"), report_id)
    return owner


async def insert(conn: Connection, message: NewMessage) -> datetime | None:
    """When it was received, or None if a message with this id already existed."""
    received_at: datetime | None = await conn.fetchval(
        query("messages.insert"),
        message.id,
        message.report_id,
        message.author_id,
        message.author_role,
        message.device_id,
        message.device_key,
        message.sent_at,
        message.ciphertext,
        message.ciphertext_sha256,
        message.signature,
    )
    return received_at


async def existing(conn: Connection, message_id: UUID) -> Stored | None:
    row = await conn.fetchrow(query("messages.existing"), message_id)
    return to_struct(row, Stored) if row else None


async def thread(conn: Connection, report_id: UUID, limit: int) -> list[ThreadRow]:
    return [
        to_struct(r, ThreadRow)
        for r in await conn.fetch(query("messages.thread"), report_id, limit)
    ]


async def inbox(conn: Connection, account_id: UUID, limit: int) -> list[InboxItem]:
    return [
        to_struct(r, InboxItem)
        for r in await conn.fetch(query("messages.inbox"), account_id, limit)
    ]


async def mark_read(conn: Connection, message_id: UUID, account_id: UUID) -> bool:
    status: str = await conn.execute(query("messages.mark_read"), message_id, account_id)
    return status != "INSERT 0 0"
