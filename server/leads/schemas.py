"""Lead, share and outcome wire types. Ciphertext travels as standard base64.

Officer-facing types carry no report, operative or investigator identifiers (SEC-AUTHZ-03):
an officer learns a share's id, its lead's id, its window and its ciphertext, nothing more.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from server.identity.schemas import Input

# RFC 3339, UTC, whole seconds: the contract's one spelling of a time on the wire.
Rfc3339 = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
DirectoryVersion = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
# The byte limit is a setting; this only stops absurd bodies before decoding them.
MAX_CIPHERTEXT_BYTES = 4 * 1024 * 1024
Ciphertext = Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CIPHERTEXT_BYTES)]
MAX_LEAD_REPORTS = 50
Count = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class LeadStatus(StrEnum):
    OPEN = "open"
    SHARED = "shared"
    ACTIONED = "actioned"
    CLOSED = "closed"


class ShareState(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    OPEN = "open"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Outcome(StrEnum):
    RAID_DONE = "raid_done"
    # Possible tip-off: the analysis looks at who could read these.
    TARGET_GONE = "target_gone"
    REFERRED_TO_AFTERCARE = "referred_to_aftercare"
    NO_ACTION = "no_action"


class LeadRequest(Input):
    report_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=MAX_LEAD_REPORTS)]
    # The lead text, age-encrypted to every investigator in the current directory.
    ciphertext: Ciphertext
    directory_version: DirectoryVersion


class LeadCreated(msgspec.Struct, frozen=True):
    id: UUID
    status: LeadStatus
    created_at: datetime


class ShareRequest(Input):
    officer_id: UUID
    # The lead text with this share's trace code, age-encrypted to this officer alone.
    ciphertext: Ciphertext
    directory_version: DirectoryVersion
    not_before: Rfc3339
    expires_at: Rfc3339
    trace_digest: Sha256Hex


class ShareView(msgspec.Struct, frozen=True):
    id: UUID
    lead_id: UUID
    officer_id: UUID
    created_by: UUID
    created_at: datetime
    not_before: datetime
    expires_at: datetime
    directory_version: int
    ciphertext_sha256: str
    trace_digest: str
    requires_approval: bool
    approved_by: UUID | None
    approved_at: datetime | None
    revoked_by: UUID | None
    revoked_at: datetime | None
    acknowledged_at: datetime | None
    opens: int
    state: ShareState
    readable_now: bool


class OutcomeView(msgspec.Struct, frozen=True):
    id: UUID
    lead_id: UUID
    officer_id: UUID
    outcome: Outcome
    arrests: int
    victims_safe: int
    note_ciphertext: bytes | None
    recorded_at: datetime


class LeadDetail(msgspec.Struct, frozen=True):
    id: UUID
    status: LeadStatus
    created_by: UUID
    created_at: datetime
    ciphertext: bytes
    report_ids: list[UUID]
    shares: list[ShareView]
    outcomes: list[OutcomeView]


class Assignment(msgspec.Struct, frozen=True):
    share_id: UUID
    lead_id: UUID
    not_before: datetime
    expires_at: datetime
    acknowledged: bool


class Assignments(msgspec.Struct, frozen=True):
    assignments: list[Assignment]


class ShareContent(msgspec.Struct, frozen=True):
    id: UUID
    lead_id: UUID
    not_before: datetime
    expires_at: datetime
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str


class OutcomeRequest(Input):
    outcome: Outcome
    arrests: Count = 0
    victims_safe: Count = 0
    # Free text, age-encrypted to every investigator in the directory of this version.
    note_ciphertext: Ciphertext | None = None
    directory_version: DirectoryVersion | None = None


class AccessEntry(msgspec.Struct, frozen=True):
    share_id: UUID
    officer_id: UUID
    handle: str
    accessed_at: datetime


class AccessLog(msgspec.Struct, frozen=True):
    lead_id: UUID
    entries: list[AccessEntry]
