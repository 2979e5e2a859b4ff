"""Typed wrappers over sql/queries/analysis.sql."""

from __future__ import annotations

from uuid import UUID

import msgspec

from server.analysis.schemas import Month
from server.db import Connection
from server.sql import query, to_struct


class JudgedLead(msgspec.Struct, frozen=True):
    lead_id: UUID
    compromised: bool
    officers: list[UUID]


async def judged_leads(conn: Connection) -> list[JudgedLead]:
    return [to_struct(r, JudgedLead) for r in await conn.fetch(query("analysis.judged_leads"))]


async def officer_handles(conn: Connection) -> dict[UUID, str]:
    rows = await conn.fetch(query("analysis.officer_handles"))
    return {r["account_id"]: r["handle"] for r in rows}


async def programme(conn: Connection) -> list[Month]:
    return [to_struct(r, Month) for r in await conn.fetch(query("analysis.programme"))]
