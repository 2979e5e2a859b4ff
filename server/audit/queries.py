"""Typed wrappers over `sql/queries/audit.sql`; the only callers of those statements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.sql import query, to_struct

_RECORD = query("audit.record")
_LIST_EVENTS = query("audit.list_events")
_TAKE_SEAL_LOCK = query("audit.take_seal_lock")
_HEAD = query("audit.head")
_UNSEALED_EVENTS = query("audit.unsealed_events")
_SEAL_HORIZON = query("audit.seal_horizon")
_SNAPSHOT_HORIZON = query("audit.snapshot_horizon")
_ADVANCE_SEAL_HORIZON = query("audit.advance_seal_horizon")
_COUNT_UNSEALED = query("audit.count_unsealed")
_APPEND_CHAIN = query("audit.append_chain")
_APPEND_CHECKPOINT = query("audit.append_checkpoint")
_CHECKPOINTS = query("audit.checkpoints")
_LATEST_CHECKPOINT = query("audit.latest_checkpoint")
_CHAIN_WITH_EVENTS = query("audit.chain_with_events")

_EVENT_COLUMNS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor_role",
    "action",
    "subject_type",
    "subject_id",
    "detail",
)


class EventRow(msgspec.Struct, frozen=True):
    id: int
    occurred_at: datetime
    actor_id: UUID | None
    actor_role: str | None
    action: str
    subject_type: str | None
    subject_id: str | None
    # jsonb as PostgreSQL prints it; decoded (and canonicalised) by the service.
    detail: str


class Head(msgspec.Struct, frozen=True):
    position: int
    chain_hash: bytes


class ChainLink(msgspec.Struct, frozen=True):
    position: int
    event_id: int
    entry_hash: bytes
    chain_hash: bytes


class SealedEntry(msgspec.Struct, frozen=True):
    link: ChainLink
    # None when the sealed event row has disappeared.
    event: EventRow | None


class CheckpointRow(msgspec.Struct, frozen=True):
    position: int
    chain_hash: bytes
    signature: bytes


class SignedCheckpointRow(msgspec.Struct, frozen=True):
    position: int
    chain_hash: bytes
    signature: bytes
    signed_at: datetime


async def record(
    conn: Connection,
    *,
    actor_id: UUID | None,
    actor_role: str | None,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    detail_json: str,
) -> int:
    event_id: int = await conn.fetchval(
        _RECORD, actor_id, actor_role, action, subject_type, subject_id, detail_json
    )
    return event_id


async def list_events(
    conn: Connection,
    *,
    before_id: int | None,
    action: str | None,
    actor_id: UUID | None,
    limit: int,
) -> list[EventRow]:
    rows = await conn.fetch(_LIST_EVENTS, before_id, action, actor_id, limit)
    return [to_struct(r, EventRow) for r in rows]


async def take_seal_lock(conn: Connection) -> None:
    await conn.execute(_TAKE_SEAL_LOCK)


async def head(conn: Connection) -> Head | None:
    row = await conn.fetchrow(_HEAD)
    return None if row is None else to_struct(row, Head)


async def seal_horizon(conn: Connection) -> int:
    horizon: int = await conn.fetchval(_SEAL_HORIZON)
    return horizon


async def snapshot_horizon(conn: Connection) -> int:
    horizon: int = await conn.fetchval(_SNAPSHOT_HORIZON)
    return horizon


async def unsealed_events(conn: Connection, *, since: int, limit: int) -> list[EventRow]:
    rows = await conn.fetch(_UNSEALED_EVENTS, since, limit)
    return [to_struct(r, EventRow) for r in rows]


async def advance_seal_horizon(conn: Connection, horizon: int) -> None:
    await conn.execute(_ADVANCE_SEAL_HORIZON, horizon)


async def count_unsealed(conn: Connection) -> int:
    count: int = await conn.fetchval(_COUNT_UNSEALED)
    return count


async def append_chain(conn: Connection, links: Sequence[ChainLink]) -> None:
    await conn.execute(
        _APPEND_CHAIN,
        [link.position for link in links],
        [link.event_id for link in links],
        [link.entry_hash for link in links],
        [link.chain_hash for link in links],
    )


async def append_checkpoint(
    conn: Connection, *, position: int, chain_hash: bytes, signature: bytes
) -> None:
    await conn.execute(_APPEND_CHECKPOINT, position, chain_hash, signature)


async def checkpoints(conn: Connection) -> list[CheckpointRow]:
    return [to_struct(r, CheckpointRow) for r in await conn.fetch(_CHECKPOINTS)]


async def latest_checkpoint(conn: Connection) -> SignedCheckpointRow | None:
    row = await conn.fetchrow(_LATEST_CHECKPOINT)
    return None if row is None else to_struct(row, SignedCheckpointRow)


async def chain_with_events(
    conn: Connection, *, prefetch: int = 1000
) -> AsyncIterator[SealedEntry]:
    """Streams the chain with a server-side cursor; the caller must be inside a transaction."""
    async for row in conn.cursor(_CHAIN_WITH_EVENTS, prefetch=prefetch):
        link = ChainLink(
            position=row["position"],
            event_id=row["event_id"],
            entry_hash=row["entry_hash"],
            chain_hash=row["chain_hash"],
        )
        event = (
            None
            if row["id"] is None
            else msgspec.convert({c: row[c] for c in _EVENT_COLUMNS}, EventRow)
        )
        yield SealedEntry(link=link, event=event)
