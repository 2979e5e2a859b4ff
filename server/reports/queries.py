"""Typed wrappers over sql/queries/reports.sql."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.reports.schemas import QueueItem
from server.sql import query, to_struct


class Stored(msgspec.Struct, frozen=True):
    operative_id: UUID
    sent_at: str
    ciphertext_sha256: str
    signature: str
    receipt: str
    received_at: datetime


class OwnRow(msgspec.Struct, frozen=True):
    id: UUID
    status: str
    received_at: datetime


class FullRow(msgspec.Struct, frozen=True):
    id: UUID
    operative_id: UUID
    device_id: UUID
    sent_at: str
    received_at: datetime
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str
    receipt: str
    status: str
    priority: int
    device_jwk: str


class TriageState(msgspec.Struct, frozen=True):
    status: str
    priority: int
    operative_id: UUID


class NewReport(msgspec.Struct, frozen=True):
    id: UUID
    operative_id: UUID
    device_id: UUID
    sent_at: str
    received_at: datetime
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str
    receipt: str


async def device_key(conn: Connection, device_id: UUID) -> str | None:
    jwk: str | None = await conn.fetchval(query("reports.device_key"), device_id)
    return jwk


async def insert(conn: Connection, report: NewReport) -> bool:
    """True if stored now; False if a report with this id already existed."""
    receipt = await conn.fetchval(
        query("reports.insert"),
        report.id,
        report.operative_id,
        report.device_id,
        report.sent_at,
        report.received_at,
        report.directory_version,
        report.ciphertext,
        report.ciphertext_sha256,
        report.signature,
        report.receipt,
    )
    return receipt is not None


async def existing(conn: Connection, report_id: UUID) -> Stored | None:
    row = await conn.fetchrow(query("reports.existing"), report_id)
    return to_struct(row, Stored) if row else None


async def queue(
    conn: Connection,
    *,
    status: str | None,
    priority: int | None,
    received_from: datetime | None,
    received_until: datetime | None,
    operative_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[QueueItem]:
    rows = await conn.fetch(
        query("reports.queue"),
        status,
        priority,
        received_from,
        received_until,
        operative_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [to_struct(r, QueueItem) for r in rows]


async def own(
    conn: Connection, operative_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> list[OwnRow]:
    rows = await conn.fetch(
        query("reports.own"),
        operative_id,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return [to_struct(r, OwnRow) for r in rows]


async def full(conn: Connection, report_id: UUID) -> FullRow | None:
    row = await conn.fetchrow(query("reports.full"), report_id)
    return to_struct(row, FullRow) if row else None


async def status_of(conn: Connection, report_id: UUID) -> TriageState | None:
    row = await conn.fetchrow(query("reports.status_of"), report_id)
    return to_struct(row, TriageState) if row else None


async def set_triage(conn: Connection, report_id: UUID, status: str, priority: int) -> None:
    await conn.execute(query("reports.set_triage"), report_id, status, priority)
