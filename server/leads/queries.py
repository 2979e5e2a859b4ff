"""Typed wrappers over sql/queries/leads.sql."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.leads.schemas import AccessEntry, Assignment, OutcomeView, ShareContent, ShareView
from server.sql import query, to_struct


class Created(msgspec.Struct, frozen=True):
    id: UUID
    created_at: datetime
    status: str


class LeadState(msgspec.Struct, frozen=True):
    id: UUID
    status: str


class LeadRow(msgspec.Struct, frozen=True):
    id: UUID
    status: str
    created_by: UUID
    created_at: datetime
    ciphertext: bytes
    report_ids: list[UUID]


class NewShare(msgspec.Struct, frozen=True):
    lead_id: UUID
    officer_id: UUID
    created_by: UUID
    not_before: datetime
    expires_at: datetime
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str
    trace_digest: str
    requires_approval: bool


class ShareState(msgspec.Struct, frozen=True):
    id: UUID
    lead_id: UUID
    officer_id: UUID
    created_by: UUID
    requires_approval: bool
    approved_at: datetime | None
    revoked_at: datetime | None
    in_window: bool


class RecordedOutcome(msgspec.Struct, frozen=True):
    id: UUID
    recorded_at: datetime


async def verified_count(conn: Connection, report_ids: list[UUID]) -> int:
    count: int = await conn.fetchval(query("leads.verified_count"), report_ids)
    return count


async def create(conn: Connection, created_by: UUID, ciphertext: bytes) -> Created:
    return to_struct(await conn.fetchrow(query("leads.create"), created_by, ciphertext), Created)


async def link_reports(conn: Connection, lead_id: UUID, report_ids: list[UUID]) -> None:
    await conn.execute(query("leads.link_reports"), lead_id, report_ids)


async def lead_for_update(conn: Connection, lead_id: UUID) -> LeadState | None:
    row = await conn.fetchrow(query("leads.lead_for_update"), lead_id)
    return to_struct(row, LeadState) if row else None


async def set_status(conn: Connection, lead_id: UUID, status: str) -> None:
    await conn.execute(query("leads.set_status"), lead_id, status)


async def lead(conn: Connection, lead_id: UUID) -> LeadRow | None:
    row = await conn.fetchrow(query("leads.lead"), lead_id)
    return to_struct(row, LeadRow) if row else None


async def officer_cleared(conn: Connection, officer_id: UUID) -> bool:
    cleared: bool = await conn.fetchval(query("leads.officer_cleared"), officer_id)
    return cleared


async def officers_holding(conn: Connection, lead_id: UUID) -> set[UUID]:
    return {r["officer_id"] for r in await conn.fetch(query("leads.officers_holding"), lead_id)}


async def insert_share(conn: Connection, share: NewShare) -> UUID | None:
    share_id: UUID | None = await conn.fetchval(
        query("leads.insert_share"),
        share.lead_id,
        share.officer_id,
        share.created_by,
        share.not_before,
        share.expires_at,
        share.directory_version,
        share.ciphertext,
        share.ciphertext_sha256,
        share.trace_digest,
        share.requires_approval,
    )
    return share_id


async def shares(
    conn: Connection, *, lead_id: UUID | None = None, share_id: UUID | None = None
) -> list[ShareView]:
    rows = await conn.fetch(query("leads.shares"), lead_id, share_id)
    return [to_struct(r, ShareView) for r in rows]


async def share_for_update(conn: Connection, share_id: UUID) -> ShareState | None:
    row = await conn.fetchrow(query("leads.share_for_update"), share_id)
    return to_struct(row, ShareState) if row else None


async def approve_share(conn: Connection, share_id: UUID, by: UUID) -> None:
    await conn.execute(query("leads.approve_share"), share_id, by)


async def revoke_share(conn: Connection, share_id: UUID, by: UUID) -> None:
    await conn.execute(query("leads.revoke_share"), share_id, by)


async def revoke_lead_shares(conn: Connection, lead_id: UUID, by: UUID) -> list[UUID]:
    return [r["id"] for r in await conn.fetch(query("leads.revoke_lead_shares"), lead_id, by)]


async def assignments(conn: Connection, officer_id: UUID) -> list[Assignment]:
    rows = await conn.fetch(query("leads.assignments"), officer_id)
    return [to_struct(r, Assignment) for r in rows]


async def open_share(conn: Connection, share_id: UUID, officer_id: UUID) -> ShareContent | None:
    row = await conn.fetchrow(query("leads.open_share"), share_id, officer_id)
    return to_struct(row, ShareContent) if row else None


async def record_access(conn: Connection, share_id: UUID, lead_id: UUID, officer_id: UUID) -> None:
    await conn.execute(query("leads.record_access"), share_id, lead_id, officer_id)


async def acknowledge(conn: Connection, share_id: UUID, officer_id: UUID) -> bool:
    recorded = await conn.fetchval(query("leads.acknowledge"), share_id, officer_id)
    return recorded is True


async def officer_holds_open_share(conn: Connection, lead_id: UUID, officer_id: UUID) -> bool:
    holds: bool = await conn.fetchval(query("leads.officer_holds_open_share"), lead_id, officer_id)
    return holds


async def lead_status(conn: Connection, lead_id: UUID) -> str | None:
    status: str | None = await conn.fetchval(query("leads.lead_status"), lead_id)
    return status


async def insert_outcome(
    conn: Connection,
    lead_id: UUID,
    officer_id: UUID,
    outcome: str,
    arrests: int,
    victims_safe: int,
    note_ciphertext: bytes | None,
) -> RecordedOutcome:
    row = await conn.fetchrow(
        query("leads.insert_outcome"),
        lead_id,
        officer_id,
        outcome,
        arrests,
        victims_safe,
        note_ciphertext,
    )
    return to_struct(row, RecordedOutcome)


async def outcomes(conn: Connection, lead_id: UUID) -> list[OutcomeView]:
    return [to_struct(r, OutcomeView) for r in await conn.fetch(query("leads.outcomes"), lead_id)]


async def access_log(conn: Connection, lead_id: UUID) -> list[AccessEntry]:
    return [to_struct(r, AccessEntry) for r in await conn.fetch(query("leads.access_log"), lead_id)]
