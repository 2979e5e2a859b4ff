"""Officer vetting wire types."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from server.identity.schemas import Input

# Free text an investigator types; no names of people, only of units and ranks.
Unit = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Rank = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class VettingStatus(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


class AlertKind(StrEnum):
    UNUSUAL_HOUR = "unusual_hour"
    BURST = "burst"
    FAILED_CHECKS = "failed_checks"


class OfficerProposal(Input):
    account_id: UUID
    unit: Unit
    rank: Rank
    review_due: date


class ReadableShare(msgspec.Struct, frozen=True):
    share_id: UUID
    lead_id: UUID
    expires_at: datetime


class Alert(msgspec.Struct, frozen=True):
    kind: AlertKind
    raised_at: datetime


class OfficerView(msgspec.Struct, frozen=True):
    account_id: UUID
    handle: str
    unit: str
    rank: str
    review_due: date
    status: VettingStatus
    # Past the review date an active officer reads nothing until re-proposed and re-approved.
    review_overdue: bool
    # Whether the database would let this officer open a share right now.
    cleared: bool
    proposed_by: UUID
    proposed_at: datetime
    approved_by: UUID | None
    approved_at: datetime | None
    status_changed_by: UUID | None
    status_changed_at: datetime | None
    alerts: list[Alert]
    readable: list[ReadableShare]


class OfficerList(msgspec.Struct, frozen=True):
    officers: list[OfficerView]
