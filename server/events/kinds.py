"""What an event can say happened. The database checks the same list (0006_events.sql)."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    # To the investigators' role.
    REPORT_RECEIVED = "report.received"
    # To the owning operative's account and to the investigators' role.
    REPORT_STATUS_CHANGED = "report.status_changed"
    # To the recipient operative's account, or to the investigators' role.
    MESSAGE_RECEIVED = "message.received"
    # To the officer's account, when a share to them is approved inside its window. The event's
    # `subject_id` is the share, its `report_id` the lead (never a report: see 0008).
    SHARE_AVAILABLE = "share.available"
