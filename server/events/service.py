"""Publishing events, and the rules of one subscriber's stream.

An event says only which report (and which report or message) changed, and to whom it is
addressed. Row-level security decides, per subscriber and per event, whether it is sent: the
notification that wakes a stream carries an id, never a reason to trust it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from typing import Final
from uuid import UUID

import asyncpg
import msgspec

from server.db import Connection, Pool
from server.errors import BadRequest
from server.events import queries
from server.events.hub import EventHub, SubscriptionLost
from server.events.kinds import EventKind
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as

# An event id is a positive bigint; anything else in Last-Event-ID is refused, not guessed at.
_EVENT_ID: Final = re.compile(r"^[0-9]{1,19}$", re.ASCII)
_MAX_EVENT_ID: Final = 2**63 - 1
# Sent once the replay is done, and between events: comment lines that clients ignore, which
# keep proxies from closing an idle connection and let a client notice a dead one.
READY: Final = b": ready\n\n"
HEARTBEAT: Final = b": heartbeat\n\n"

_log = logging.getLogger("tipline.events")


class EventData(msgspec.Struct, frozen=True):
    """The `data:` of an event: ids only, so a stream on a seized phone reveals no content."""

    id: int
    kind: str
    subject_id: UUID
    report_id: UUID


async def publish(
    conn: Connection,
    kind: EventKind,
    *,
    subject_id: UUID,
    report_id: UUID,
    audience_account: UUID | None = None,
    audience_role: str | None = None,
) -> int:
    """Stores an event in the caller's transaction; every app process hears of it on commit.

    Call it last before committing: it holds a lock that orders event ids by commit until then
    (0006_events.sql). Under a duress session nothing is stored and the id is still returned.
    """
    if (audience_account is None) == (audience_role is None):
        raise ValueError("an event is addressed to exactly one account or one role")
    if audience_role is not None:
        audience_role = Role(audience_role).value
    return await queries.publish(
        conn,
        kind=EventKind(kind).value,
        subject_id=subject_id,
        report_id=report_id,
        audience_account=audience_account,
        audience_role=audience_role,
    )


def parse_last_event_id(values: Sequence[str]) -> int | None:
    if not values:
        return None
    if len(values) != 1 or not _EVENT_ID.match(values[0]) or int(values[0]) > _MAX_EVENT_ID:
        raise BadRequest("Last-Event-ID must be one event id")
    return int(values[0])


def encode(event: queries.EventRow) -> bytes:
    data = msgspec.json.encode(
        EventData(
            id=event.id, kind=event.kind, subject_id=event.subject_id, report_id=event.report_id
        )
    )
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.id, event.kind.encode(), data)


async def event_stream(
    pool: Pool, hub: EventHub, principal: Principal, last_event_id: int | None
) -> AsyncIterator[bytes]:
    """The frames of one subscriber's stream, until its session ends or it must reconnect.

    No database connection is held while a frame is being sent: a slow reader must not be able
    to pin pool connections.
    """
    try:
        subscription = hub.subscribe()
    except SubscriptionLost:
        return
    try:
        # Subscribed before the replay query, so an event committed while it runs is either in
        # the replay or queued, never lost. Ids follow commit order (0006_events.sql), so an
        # event queued with an id the replay already sent is a duplicate; no later one can be.
        replayed = 0
        if last_event_id is not None:
            after = last_event_id
            while True:
                async with acting_as(pool, principal) as conn:
                    page = await queries.replay(
                        conn, principal.session_id, after_id=after, limit=hub.replay_batch
                    )
                if not page.session_live:
                    return
                for event in page.events:
                    yield encode(event)
                    after = replayed = event.id
                if len(page.events) < hub.replay_batch:
                    break
        yield READY
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + hub.heartbeat_s
        while True:
            try:
                event_id = await subscription.get(next_heartbeat - loop.time())
            except TimeoutError:
                # An ended, expired or revoked session stops within one heartbeat even when
                # nothing is published.
                async with acting_as(pool, principal) as conn:
                    live = await queries.session_live(conn, principal.session_id)
                if not live:
                    return
                yield HEARTBEAT
                next_heartbeat = loop.time() + hub.heartbeat_s
                continue
            if event_id <= replayed:
                continue
            async with acting_as(pool, principal) as conn:
                visible = await queries.visible_event(conn, principal.session_id, event_id)
            if not visible.session_live:
                return
            for event in visible.events:
                yield encode(event)
    except SubscriptionLost:
        # Fell behind, or the hub lost its connection: the client resumes with Last-Event-ID.
        return
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # A database failover mid-stream: end it; the client reconnects and replays.
        _log.warning("event stream ended by a database error", extra={"error": type(exc).__name__})
        return
    finally:
        hub.unsubscribe(subscription)
