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
