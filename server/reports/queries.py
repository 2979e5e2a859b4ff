"""Typed wrappers over sql/queries/reports.sql."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.envelope.signatures import AttachmentDigest
from server.reports.schemas import CitedAttachment, QueueItem
from server.sql import query, to_struct


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


class Intake(msgspec.Struct, frozen=True):
    """What `submit_report` did: 'created', 'stored' (the stored columns follow), 'taken' (the
    id is another account's) or 'outdated' (current_version is the directory to use)."""

    outcome: str
    current_version: int | None
    sent_at: str | None
    ciphertext_sha256: str | None
    signature: str | None
    receipt: str | None
    received_at: datetime | None


async def submit(
    conn: Connection,
    report: NewReport,
    *,
    role: str,
    duress: bool,
    audit_detail_json: str,
    attachments: Sequence[AttachmentDigest],
) -> Intake:
    row = await conn.fetchrow(
        query("reports.submit"),
        report.operative_id,
        role,
        duress,
        report.id,
        report.device_id,
        report.sent_at,
        report.received_at,
        report.directory_version,
        report.ciphertext,
        report.ciphertext_sha256,
        report.signature,
        report.receipt,
        audit_detail_json,
        [a.attachment_id for a in attachments],
        [a.plaintext_sha256 for a in attachments],
        [a.ciphertext_sha256 for a in attachments],
    )
    return to_struct(row, Intake)


async def attachments(conn: Connection, report_id: UUID) -> list[CitedAttachment]:
    rows = await conn.fetch(query("reports.attachments"), report_id)
    return [to_struct(r, CitedAttachment) for r in rows]


async def is_stored(conn: Connection, report_id: UUID) -> bool:
    return bool(await conn.fetchval(query("reports.is_stored"), report_id))


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
