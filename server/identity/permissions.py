"""Permissions are data: one role -> permission table; whatever is absent is denied.

Every authenticated route declares exactly one permission (`opt={"permission": ...}`); a route
that declares none is refused by the guard and fails the architecture test.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OPERATIVE = "operative"
    INVESTIGATOR = "investigator"
    OFFICER = "officer"
    ADMIN = "admin"


class Permission(StrEnum):
    SESSION_OWN = "session:own:use"
    DEVICE_REVOKE_OWN = "device:own:revoke"
    DURESS_SET = "account:own:set-duress"
    INVITE_CREATE = "invite:any:create"
    ACCOUNT_LIST = "account:any:list"
    ACCOUNT_MANAGE = "account:any:manage"
    AUDIT_READ = "audit:any:read"
    EVENTS_READ = "events:own:read"
    KEYS_READ = "keys:directory:read"
    KEYS_PUBLISH = "keys:directory:publish"
    REPORT_SUBMIT = "report:own:submit"
    REPORT_READ = "report:visible:read"
    REPORT_TRIAGE = "report:any:triage"
    MESSAGE_WRITE = "message:thread:write"
    MESSAGE_READ = "message:thread:read"
    EVIDENCE_UPLOAD = "evidence:own:upload"
    EVIDENCE_READ = "evidence:visible:read"
    EVIDENCE_CUSTODY = "evidence:any:custody"
    OFFICER_VET = "officer:any:vet"
    LEAD_MANAGE = "lead:any:manage"
    SHARE_READ = "share:assigned:read"
    LEAD_OUTCOME = "lead:assigned:report-outcome"
    ANALYSIS_READ = "analysis:programme:read"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATIVE: frozenset(
        {
            Permission.SESSION_OWN,
            Permission.DEVICE_REVOKE_OWN,
            Permission.DURESS_SET,
            Permission.KEYS_READ,
            Permission.EVENTS_READ,
            Permission.REPORT_SUBMIT,
            Permission.REPORT_READ,
            Permission.MESSAGE_WRITE,
            Permission.MESSAGE_READ,
            Permission.EVIDENCE_UPLOAD,
            Permission.EVIDENCE_READ,
        }
    ),
    Role.INVESTIGATOR: frozenset(
        {
            Permission.SESSION_OWN,
            Permission.DEVICE_REVOKE_OWN,
            Permission.INVITE_CREATE,
            Permission.ACCOUNT_LIST,
            Permission.AUDIT_READ,
            Permission.KEYS_READ,
            Permission.EVENTS_READ,
            Permission.KEYS_PUBLISH,
            Permission.REPORT_READ,
            Permission.REPORT_TRIAGE,
            Permission.MESSAGE_WRITE,
            Permission.MESSAGE_READ,
            Permission.EVIDENCE_UPLOAD,
            Permission.EVIDENCE_READ,
            Permission.EVIDENCE_CUSTODY,
            Permission.OFFICER_VET,
            Permission.LEAD_MANAGE,
            Permission.ANALYSIS_READ,
        }
    ),
    Role.OFFICER: frozenset(
        {
            Permission.SESSION_OWN,
            Permission.DEVICE_REVOKE_OWN,
            Permission.KEYS_READ,
            Permission.EVENTS_READ,
            Permission.SHARE_READ,
            Permission.LEAD_OUTCOME,
        }
    ),
    # Admins run the installation but hold no content key: they manage accounts and devices,
    # never reports, leads or evidence (DESIGN §1).
    Role.ADMIN: frozenset(
        {
            Permission.SESSION_OWN,
            Permission.DEVICE_REVOKE_OWN,
            Permission.INVITE_CREATE,
            Permission.ACCOUNT_LIST,
            Permission.ACCOUNT_MANAGE,
            Permission.AUDIT_READ,
            Permission.KEYS_READ,
            Permission.EVENTS_READ,
        }
    ),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
