"""Message wire types: the two-way thread between an operative and the investigators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from server.identity.schemas import Input
from server.reports.schemas import MAX_CIPHERTEXT_BYTES, SentAt, Signature


class MessageSubmission(Input):
    message_id: UUID
    sent_at: SentAt
    directory_version: Annotated[int, msgspec.Meta(ge=1)]
    ciphertext: Annotated[bytes, msgspec.Meta(min_length=1, max_length=MAX_CIPHERTEXT_BYTES)]
    signature: Signature


class MessageAccepted(msgspec.Struct, frozen=True):
    message_id: UUID
    received_at: datetime


class ThreadMessage(msgspec.Struct, frozen=True):
    id: UUID
    report_id: UUID
    author_role: str
    # Which investigator wrote is the team's business; an operative sees only the role.
    author_id: UUID | None
    device_key: dict[str, str]
    sent_at: str
    received_at: datetime
    ciphertext: bytes
    ciphertext_sha256: str
    signature: str


class Thread(msgspec.Struct, frozen=True):
    messages: list[ThreadMessage]


class InboxItem(msgspec.Struct, frozen=True):
    id: UUID
    report_id: UUID
    author_role: str
    received_at: datetime
    read: bool


class Inbox(msgspec.Struct, frozen=True):
    messages: list[InboxItem]
