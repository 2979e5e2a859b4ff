"""Wire types of the audit API, and the verifier's result."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

# Flat, small, non-secret: ids, counts and status names. Nested values or floats have no place
# in an audit line and would make the canonical encoding harder to reproduce elsewhere.
DetailValue = str | int | bool
Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
Ed25519SignatureHex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{128}$")]
Position = Annotated[int, msgspec.Meta(ge=1)]


class AuditEvent(msgspec.Struct, frozen=True):
    id: int
    occurred_at: datetime
    actor_id: UUID | None
    actor_role: str | None
    action: str
    subject_type: str | None
    subject_id: str | None
    detail: dict[str, DetailValue]


class AuditPage(msgspec.Struct, frozen=True):
    events: list[AuditEvent]
    # Pass as `before_id` for the next (older) page; null on the last page.
    next_before_id: int | None


class BreakReason(StrEnum):
    # The event row no longer hashes to what was sealed: a field was altered.
    ENTRY_MISMATCH = "entry_mismatch"
    # The sealed event row is gone: deleted.
    MISSING_EVENT = "missing_event"
    # A position is missing from the chain: chain rows were deleted.
    MISSING_POSITION = "missing_position"
    # The stored link does not follow from the previous one: the chain was rewritten or reordered.
    LINK_MISMATCH = "link_mismatch"
    # A signed head disagrees with the chain at its position: history was rewritten.
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    # A signed head lies beyond the chain's end: the tail was cut off.
    TAIL_TRUNCATED = "tail_truncated"
    # A checkpoint's signature does not verify under the sealer's public key.
    BAD_SIGNATURE = "bad_signature"


class VerifyResult(msgspec.Struct, frozen=True):
    ok: bool
    # Positions checked, i.e. the head position when the chain is intact.
    head_position: int
    head_chain_hash: str | None
    checkpoints_checked: int
    # Events committed but not yet sealed; a growing number means the sealer is not running.
    unsealed_events: int
    broken_position: int | None = None
    broken_event_id: int | None = None
    reason: BreakReason | None = None


class Checkpoint(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A signed head as exported to, and read back from, a separate system (hex encoded)."""

    position: Position
    chain_hash: Sha256Hex
    signature: Ed25519SignatureHex | None = None
