"""Typed wrappers over sql/queries/officers.sql."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.sql import query, to_struct


class AccountRole(msgspec.Struct, frozen=True):
    role: str
    status: str


class Vetting(msgspec.Struct, frozen=True):
    account_id: UUID
    status: str
    proposed_by: UUID
    overdue: bool


class Row(msgspec.Struct, frozen=True):
    account_id: UUID
    handle: str
    unit: str
    rank: str
    review_due: date
    status: str
    proposed_by: UUID
    proposed_at: datetime
    approved_by: UUID | None
    approved_at: datetime | None
    status_changed_by: UUID | None
    status_changed_at: datetime | None
    review_overdue: bool
    cleared: bool


class OpenShare(msgspec.Struct, frozen=True):
    share_id: UUID
    lead_id: UUID
    officer_id: UUID
    expires_at: datetime


class AlertRow(msgspec.Struct, frozen=True):
    officer_id: UUID
    kind: str
    raised_at: datetime


class OpenCounts(msgspec.Struct, frozen=True):
    recent: int
    history: int
    near_this_hour: int


async def account_role(conn: Connection, account_id: UUID) -> AccountRole | None:
    row = await conn.fetchrow(query("officers.account_role"), account_id)
    return to_struct(row, AccountRole) if row else None


async def vetting_for_update(conn: Connection, account_id: UUID) -> Vetting | None:
    row = await conn.fetchrow(query("officers.vetting_for_update"), account_id)
    return to_struct(row, Vetting) if row else None


async def propose(
    conn: Connection, account_id: UUID, unit: str, rank: str, review_due: date, by: UUID
) -> bool:
    """False when a concurrent proposal for the same account committed first."""
    stored = await conn.fetchval(query("officers.propose"), account_id, unit, rank, review_due, by)
    return stored is True


async def repropose(
    conn: Connection, account_id: UUID, unit: str, rank: str, review_due: date, by: UUID
) -> None:
    await conn.execute(query("officers.repropose"), account_id, unit, rank, review_due, by)


async def approve(conn: Connection, account_id: UUID, by: UUID) -> bool:
    status: str = await conn.execute(query("officers.approve"), account_id, by)
    return status == "UPDATE 1"


async def set_status(conn: Connection, account_id: UUID, status: str, by: UUID) -> None:
    await conn.execute(query("officers.set_status"), account_id, status, by)


async def end_sessions(conn: Connection, account_id: UUID) -> int:
    status: str = await conn.execute(query("officers.end_sessions"), account_id)
    return int(status.rsplit(" ", 1)[-1])


async def list_officers(conn: Connection, account_id: UUID | None = None) -> list[Row]:
    return [to_struct(r, Row) for r in await conn.fetch(query("officers.list"), account_id)]


async def readable_shares(conn: Connection) -> list[OpenShare]:
    return [to_struct(r, OpenShare) for r in await conn.fetch(query("officers.readable_shares"))]


async def recent_alerts(conn: Connection, since: datetime) -> list[AlertRow]:
    return [
        to_struct(r, AlertRow) for r in await conn.fetch(query("officers.recent_alerts"), since)
    ]


async def open_counts(
    conn: Connection, officer_id: UUID, burst_window_s: float, history_days: int, tolerance_h: int
) -> OpenCounts:
    row = await conn.fetchrow(
        query("officers.open_counts"), officer_id, burst_window_s, history_days, tolerance_h
    )
    return to_struct(row, OpenCounts)


async def record_failure(conn: Connection, officer_id: UUID, share_id: UUID | None) -> None:
    await conn.execute(query("officers.record_failure"), officer_id, share_id)


async def recent_failures(conn: Connection, officer_id: UUID, window_s: float) -> int:
    count: int = await conn.fetchval(query("officers.recent_failures"), officer_id, window_s)
    return count


async def raise_alert(conn: Connection, kind: str, dedupe_s: float) -> bool:
    """For the officer whose context `conn` carries (0008: raise_officer_alert)."""
    raised = await conn.fetchval(query("officers.raise_alert"), kind, dedupe_s)
    return raised is True
