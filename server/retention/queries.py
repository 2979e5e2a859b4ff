"""Typed wrappers over sql/queries/retention.sql."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.sql import query, to_struct


class DueObject(msgspec.Struct, frozen=True):
    id: UUID
    report_id: UUID
    storage_key: str
    storage_state: str


async def try_lead(conn: Connection) -> bool:
    led: bool = await conn.fetchval(query("retention.try_lead"))
    return led


async def rejected_due(conn: Connection, now: datetime, days: int, limit: int) -> list[UUID]:
    rows = await conn.fetch(query("retention.rejected_due"), now, days, limit)
    return [r["id"] for r in rows]


async def shred_report(conn: Connection, report_id: UUID, now: datetime) -> bool:
    return await conn.fetchval(query("retention.shred_report"), report_id, now) is not None


async def evidence_of_reports(conn: Connection, report_ids: Sequence[UUID]) -> list[DueObject]:
    rows = await conn.fetch(query("retention.evidence_of_reports"), list(report_ids))
    return [to_struct(r, DueObject) for r in rows]


async def closed_lead_evidence_due(
    conn: Connection, now: datetime, days: int, limit: int
) -> list[DueObject]:
    rows = await conn.fetch(query("retention.closed_lead_evidence_due"), now, days, limit)
    return [to_struct(r, DueObject) for r in rows]


async def shred_attachment(conn: Connection, attachment_id: UUID) -> bool:
    return await conn.fetchval(query("retention.shred_attachment"), attachment_id) is not None


async def sweep_sessions(conn: Connection, now: datetime, grace_s: int) -> int:
    return _count(await conn.execute(query("retention.sweep_sessions"), now, grace_s))


async def sweep_login_throttle(conn: Connection, now: datetime, idle_s: int) -> int:
    return _count(await conn.execute(query("retention.sweep_login_throttle"), now, idle_s))


async def place_hold(conn: Connection, lead_id: UUID, placed_by: UUID | None) -> bool:
    return await conn.fetchval(query("retention.place_hold"), lead_id, placed_by) is not None


async def release_hold(conn: Connection, lead_id: UUID) -> bool:
    return await conn.fetchval(query("retention.release_hold"), lead_id) is not None


async def lead_exists(conn: Connection, lead_id: UUID) -> bool:
    exists: bool = await conn.fetchval(query("retention.lead_exists"), lead_id)
    return exists


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3".
    return int(status.rsplit(" ", 1)[-1])
