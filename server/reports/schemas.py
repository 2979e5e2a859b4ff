"""Report wire types. Ciphertext travels as base64 (msgspec decodes it to bytes)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from server.identity.schemas import Input

# The exact timestamp string the device signed: RFC 3339, UTC, whole seconds.
SentAt = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
]
# base64url, no padding: a 64-byte signature is 86 characters.
Signature = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,200}$")]
Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
Priority = Annotated[int, msgspec.Meta(ge=0, le=3)]
# The ciphertext limit is a setting; this only stops absurd bodies before decoding them.
MAX_CIPHERTEXT_BYTES = 4 * 1024 * 1024


class Status(StrEnum):
    NEW = "new"
    IN_REVIEW = "in_review"
    VERIFIED = "verified"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    NEEDS_INFO = "needs_info"


# A report about one place and time; more files than this belong in more reports.
MAX_ATTACHMENTS = 32


class AttachmentDigest(Input):
    attachment_id: UUID
    plaintext_sha256: Sha256Hex
    ciphertext_sha256: Sha256Hex


class ReportSubmission(Input):
    report_id: UUID
    sent_at: SentAt
    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CIPHERTEXT_BYTES)]
    signature: Signature
    # Completed uploads (server/evidence) this report cites, with the digests its device signed.
    attachments: Annotated[list[AttachmentDigest], msgspec.Meta(max_length=MAX_ATTACHMENTS)] = (
        msgspec.field(default_factory=list)
    )


class Receipt(msgspec.Struct, frozen=True):
    report_id: UUID
    received_at: str
    receipt: str


class QueueItem(msgspec.Struct, frozen=True):
    id: UUID
    operative_id: UUID
    received_at: datetime
    sent_at: str
    status: Status
    priority: int
    directory_version: int
    ciphertext_bytes: int


class QueuePage(msgspec.Struct, frozen=True):
    reports: list[QueueItem]
    # Pass back as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None


class OwnReport(msgspec.Struct, frozen=True):
    """What an operative may see of their own report: no content, a day, a status."""

    id: UUID
    status: Status
    received_on: date


class OwnPage(msgspec.Struct, frozen=True):
    reports: list[OwnReport]
    next_cursor: str | None


class CitedAttachment(msgspec.Struct, frozen=True):
    attachment_id: UUID
    plaintext_sha256: str
    ciphertext_sha256: str


class ReportDetail(msgspec.Struct, frozen=True):
    id: UUID
    operative_id: UUID
    device_id: UUID
    # The signing device's public key, so the investigator's client can verify the signature.
    device_key: dict[str, str]
    sent_at: str
    received_at: str
    directory_version: int
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str
    receipt: str
    status: Status
    priority: int
    # The attachments this report cites, as its signed message lists them.
    attachments: list[CitedAttachment]


class TriageRequest(Input):
    status: Status | None = None
    priority: Priority | None = None


class TriageResult(msgspec.Struct, frozen=True):
    id: UUID
    status: Status
    priority: int
