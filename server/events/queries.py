"""Typed wrappers over `sql/queries/events.sql`; the only callers of those statements."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg
import msgspec

from server.db import Connection
from server.sql import query

_PUBLISH = query("events.publish")
_SESSION_LIVE = query("events.session_live")
_VISIBLE_EVENT = query("events.visible_event")
_REPLAY = query("events.replay")
_PING = query("events.ping")


class EventRow(msgspec.Struct, frozen=True):
    id: int
    kind: str
    subject_id: UUID
    report_id: UUID


class Visible(msgspec.Struct, frozen=True):
    """What a subscriber may be sent now; nothing at all once its session is over."""

    session_live: bool
    events: list[EventRow]


async def publish(
    conn: Connection,
    *,
    kind: str,
    subject_id: UUID,
    report_id: UUID,
    audience_account: UUID | None,
    audience_role: str | None,
) -> int:
    event_id: int = await conn.fetchval(
        _PUBLISH, kind, subject_id, report_id, audience_account, audience_role
    )
    return event_id


async def session_live(conn: Connection, session_id: UUID) -> bool:
    live: bool = await conn.fetchval(_SESSION_LIVE, session_id)
    return live


async def visible_event(conn: Connection, session_id: UUID, event_id: int) -> Visible:
    return _visible(await conn.fetch(_VISIBLE_EVENT, session_id, event_id))


async def replay(conn: Connection, session_id: UUID, *, after_id: int, limit: int) -> Visible:
    return _visible(await conn.fetch(_REPLAY, session_id, after_id, limit))


async def ping(conn: Connection) -> None:
    await conn.fetchval(_PING)


def _visible(rows: Sequence[asyncpg.Record]) -> Visible:
    # Both statements return one row with NULL event columns when nothing is visible.
    live = bool(rows) and bool(rows[0]["session_live"])
    events = [
        EventRow(
            id=r["id"],
            kind=r["kind"],
            subject_id=r["subject_id"],
            report_id=r["report_id"],
        )
        for r in rows
        if r["id"] is not None
    ]
    return Visible(session_live=live, events=events if live else [])
