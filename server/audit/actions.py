"""The audit vocabulary: every security event Tipline records, and nothing else.

`service.record` accepts only these members, so a typo or an ad-hoc string cannot create an
action that reviews and alerts do not know about (warehouse `events/tags.py`).
"""

from __future__ import annotations

from enum import StrEnum


class AuditAction(StrEnum):
    INVITE_CREATED = "invite.created"
    INVITE_REDEEMED = "invite.redeemed"
    ENROLMENT_STARTED = "enrolment.started"
    ENROLMENT_CONFIRMED = "enrolment.confirmed"

    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    LOGIN_THROTTLED = "login.throttled"
    ACCOUNT_LOCKED = "account.locked"
    ACCOUNT_UNLOCKED = "account.unlocked"
    DURESS_TRIGGERED = "duress.triggered"
    SESSION_ENDED = "session.ended"
    DEVICE_REVOKED = "device.revoked"
    ACCOUNT_SUSPENDED = "account.suspended"
    ACCOUNT_REACTIVATED = "account.reactivated"
    FACTOR_RESET = "factor.reset"
    FACTOR_CHANGED = "factor.changed"
    ACCESS_DENIED = "access.denied"

    KEYS_DIRECTORY_PUBLISHED = "keys.directory_published"
    KEYS_DIRECTORY_REFUSED = "keys.directory_refused"

    REPORT_RECEIVED = "report.received"
    REPORT_REFUSED = "report.refused"
    REPORT_STATUS_CHANGED = "report.status_changed"
    MESSAGE_SENT = "message.sent"
    MESSAGE_REFUSED = "message.refused"

    OFFICER_PROPOSED = "officer.proposed"
    OFFICER_APPROVED = "officer.approved"
    OFFICER_SUSPENDED = "officer.suspended"
    OFFICER_REVOKED = "officer.revoked"
    OFFICER_VETTING_REFUSED = "officer.vetting_refused"
    OFFICER_FLAGGED = "officer.flagged"

    LEAD_CREATED = "lead.created"
    SHARE_CREATED = "share.created"
    SHARE_APPROVED = "share.approved"
    SHARE_REVOKED = "share.revoked"
    SHARE_READ = "share.read"
    SHARE_ACKNOWLEDGED = "share.acknowledged"
    LEAD_OUTCOME_RECORDED = "lead.outcome_recorded"
    LEAD_REFUSED = "lead.refused"
    LEAD_CLOSED = "lead.closed"
    SHARE_REFUSED = "share.refused"
    SHARE_ACCESS_REFUSED = "share.access_refused"

    ATTACHMENT_RECEIVED = "attachment.received"
    ATTACHMENT_COMPLETED = "attachment.completed"
    ATTACHMENT_DOWNLOADED = "attachment.downloaded"
    ATTACHMENT_DELETED = "attachment.deleted"

    REPORT_SHREDDED = "report.shredded"
    LEAD_HOLD_PLACED = "lead.hold_placed"
    LEAD_HOLD_RELEASED = "lead.hold_released"
