"""Audit rules: the one writer, the read API's paging, and the hash-chain verifier.

`record` only INSERTs, on the caller's connection and so inside the caller's transaction: the
action and its audit line commit or roll back together, and a failed audit write fails the
action (SEC-LOG-04). Sealing into the chain happens later, in `server.audit.sealer`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from datetime import UTC
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server.audit import queries
from server.audit.actions import AuditAction
from server.audit.schemas import (
    AuditEvent,
    AuditPage,
    BreakReason,
    Checkpoint,
    DetailValue,
    VerifyResult,
)
from server.db import Connection
from server.errors import InvalidInput

# The RLS context of the sealer and the verifier (0002_audit.sql); never a person's role.
AUDITOR_ROLE = "auditor"

MAX_PAGE = 100
DEFAULT_PAGE = 50

MAX_DETAIL_KEYS = 16
MAX_DETAIL_STRING = 200
_DETAIL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
# Integers beyond 2**53 do not survive every JSON implementation, and the canonical encoding
# must be reproducible by an independent verifier.
_MAX_SAFE_INT = 2**53

# The canonical encoding is versioned so a future change cannot be confused with tampering.
CANONICAL_VERSION = "tipline.audit.v1"
ZERO_HASH = bytes(32)
# RFC 6962 §2.1 leaf prefix: a chain hash can never be mistaken for the hash of another input.
_LEAF_PREFIX = b"\x00"
# Domain separation, so a checkpoint signature cannot be replayed as any other signed message.
_CHECKPOINT_CONTEXT = b"tipline.audit.checkpoint.v1\x00"


async def record(
    conn: Connection,
    action: AuditAction,
    *,
    actor_id: UUID | None,
    actor_role: str | None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    detail: Mapping[str, DetailValue] | None = None,
) -> int:
    # The type checker enforces the vocabulary; this keeps it at run time too, because a plain
    # string that happens to look right would slip past reviews and alert rules.
    if not isinstance(action, AuditAction):
        raise TypeError("audit actions must be AuditAction members")
    return await queries.record(
        conn,
        actor_id=actor_id,
        actor_role=actor_role,
        action=action.value,
        subject_type=subject_type,
        subject_id=subject_id,
        detail_json=encode_detail(detail or {}),
    )


def encode_detail(detail: Mapping[str, DetailValue]) -> str:
    # A caller passing something else is a programming error, not bad input: fail loudly so
    # the action fails with it rather than writing an audit line nobody can read back.
    if len(detail) > MAX_DETAIL_KEYS:
        raise ValueError(f"audit detail holds at most {MAX_DETAIL_KEYS} keys")
    for key, value in detail.items():
        if not isinstance(key, str) or not _DETAIL_KEY.match(key):
            raise ValueError("audit detail keys are short snake_case names")
        if isinstance(value, str):
            if len(value) > MAX_DETAIL_STRING or "\x00" in value:
                raise ValueError(f"audit detail {key!r}: string too long or contains NUL")
        elif isinstance(value, int):
            if not isinstance(value, bool) and abs(value) > _MAX_SAFE_INT:
                raise ValueError(f"audit detail {key!r}: integer out of range")
        else:
            raise TypeError(f"audit detail {key!r}: only str, int and bool values")
    return msgspec.json.encode(dict(detail), order="sorted").decode()


async def list_events(
    conn: Connection,
    *,
    limit: int = DEFAULT_PAGE,
    before_id: int | None = None,
    action: AuditAction | None = None,
    actor_id: UUID | None = None,
) -> AuditPage:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    rows = await queries.list_events(
        conn,
        before_id=before_id,
        action=action.value if action is not None else None,
        actor_id=actor_id,
        limit=limit + 1,
    )
    page = rows[:limit]
    return AuditPage(
        events=[
            AuditEvent(
                id=r.id,
                occurred_at=r.occurred_at,
                actor_id=r.actor_id,
                actor_role=r.actor_role,
                action=r.action,
                subject_type=r.subject_type,
                subject_id=r.subject_id,
                detail=msgspec.json.decode(r.detail, type=dict[str, DetailValue]),
            )
            for r in page
        ],
        next_before_id=page[-1].id if len(rows) > limit else None,
    )


def canonical_entry(event: queries.EventRow) -> bytes:
    """The bytes an event is sealed as: a JSON array, fixed field order, sorted detail keys."""
    occurred_at = event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return msgspec.json.encode(
        [
            CANONICAL_VERSION,
            event.id,
            occurred_at,
            str(event.actor_id) if event.actor_id is not None else None,
            event.actor_role,
            event.action,
            event.subject_type,
            event.subject_id,
            # Decoded and re-encoded so the hash depends on the value, not on how this
            # PostgreSQL version happens to print jsonb.
            msgspec.json.decode(event.detail),
        ],
        order="sorted",
    )


def entry_hash(event: queries.EventRow) -> bytes:
    return hashlib.sha256(canonical_entry(event)).digest()


def next_chain_hash(previous: bytes, entry: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + previous + entry).digest()


def checkpoint_message(position: int, chain_hash: bytes) -> bytes:
    return _CHECKPOINT_CONTEXT + position.to_bytes(8, "big") + chain_hash


def _signature_ok(
    public_key: Ed25519PublicKey, position: int, chain_hash: bytes, sig: bytes
) -> bool:
    try:
        public_key.verify(sig, checkpoint_message(position, chain_hash))
    except InvalidSignature:
        return False
    return True


class _Head(msgspec.Struct, frozen=True):
    chain_hash: bytes
    signature: bytes | None


async def verify_chain(
    conn: Connection,
    *,
    public_key: Ed25519PublicKey | None = None,
    trusted: Sequence[Checkpoint] = (),
) -> VerifyResult:
    """Recomputes the chain from the events and reports the first position that does not hold.

    `trusted` are checkpoints kept outside the database (SEC-LOG-03): they catch a tail cut off
    or rewritten by someone who also removed the in-database checkpoints. With `public_key`,
    every checkpoint's signature must verify too.
    """
    # Checkpoints are read before the chain: a checkpoint commits with its chain rows, so the
    # chain read afterwards always reaches it, and a concurrent sealer cannot cause a false
    # "tail truncated".
    heads: list[tuple[int, _Head]] = [
        (c.position, _Head(chain_hash=c.chain_hash, signature=c.signature))
        for c in await queries.checkpoints(conn)
    ]
    heads += [
        (
            t.position,
            _Head(
                chain_hash=bytes.fromhex(t.chain_hash),
                signature=bytes.fromhex(t.signature) if t.signature is not None else None,
            ),
        )
        for t in trusted
    ]
    by_position: dict[int, list[_Head]] = {}
    for position, head in heads:
        by_position.setdefault(position, []).append(head)

    unsealed = await queries.count_unsealed(conn)
    previous = ZERO_HASH
    position = 0

    def result(
        broken: int | None = None, event_id: int | None = None, reason: BreakReason | None = None
    ) -> VerifyResult:
        return VerifyResult(
            ok=reason is None,
            head_position=position,
            head_chain_hash=previous.hex() if position else None,
            checkpoints_checked=sum(len(v) for p, v in by_position.items() if p <= position),
            unsealed_events=unsealed,
            broken_position=broken,
            broken_event_id=event_id,
            reason=reason,
        )

    async for entry in queries.chain_with_events(conn):
        link = entry.link
        if link.position != position + 1:
            return result(position + 1, None, BreakReason.MISSING_POSITION)
        if entry.event is None:
            return result(link.position, link.event_id, BreakReason.MISSING_EVENT)
        if not hmac.compare_digest(entry_hash(entry.event), link.entry_hash):
            return result(link.position, link.event_id, BreakReason.ENTRY_MISMATCH)
        computed = next_chain_hash(previous, link.entry_hash)
        if not hmac.compare_digest(computed, link.chain_hash):
            return result(link.position, link.event_id, BreakReason.LINK_MISMATCH)
        for head in by_position.get(link.position, ()):
            if not hmac.compare_digest(head.chain_hash, computed):
                return result(link.position, link.event_id, BreakReason.CHECKPOINT_MISMATCH)
            # An exported checkpoint without a signature is trusted for where it is kept;
            # every in-database one carries a signature (NOT NULL).
            if (
                public_key is not None
                and head.signature is not None
                and not _signature_ok(public_key, link.position, computed, head.signature)
            ):
                return result(link.position, link.event_id, BreakReason.BAD_SIGNATURE)
        previous, position = computed, link.position

    if any(p > position for p in by_position):
        return result(position + 1, None, BreakReason.TAIL_TRUNCATED)
    return result()
