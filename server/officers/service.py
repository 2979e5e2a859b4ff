"""Vetting rules: two people put an officer on the list, one takes them off at once.

An investigator proposes; a *different* investigator approves (SEC-AUTHZ-09, DESIGN §2: no
admin and no single investigator can add an officer). Suspension and revocation need one
investigator and act in the same transaction: the officer's sessions end and, because the
share policies read the vetting row on every statement (0008_officers_leads.sql), nothing they
were shared can be read any more. An officer past the review date is treated as suspended.

This module also keeps watch on how officers use their access: unusual hours, bursts of opens
and repeated refused checks raise an alert (an audit event and a flag on the officer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from server import db
from server.audit.actions import AuditAction
from server.audit.service import record
from server.errors import Conflict, Forbidden, InvalidInput, NotFound, TiplineError
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as
from server.identity.service import record_failure
from server.officers import queries
from server.officers.schemas import (
    Alert,
    AlertKind,
    OfficerList,
    OfficerProposal,
    OfficerView,
    ReadableShare,
    VettingStatus,
)
from server.settings import Settings

# An unusual-hour alert is raised at most once an hour per officer: one odd night is one alert.
UNUSUAL_HOUR_DEDUPE_S = 3600.0


class TwoPersonRule(Forbidden):
    slug, title = "two-person-rule", "A second investigator must approve this"


async def _refuse(
    pool: db.Pool, principal: Principal, officer_id: UUID, refused: TiplineError
) -> None:
    await record_failure(
        pool,
        AuditAction.OFFICER_VETTING_REFUSED,
        reason=refused.slug,
        principal=principal,
        subject_type="officer",
        subject_id=str(officer_id),
    )


def _today() -> datetime:
    return datetime.now(UTC)


async def propose(
    settings: Settings, pool: db.Pool, principal: Principal, proposal: OfficerProposal
) -> OfficerView:
    today = _today().date()
    if not today < proposal.review_due <= today + timedelta(days=settings.officer_review_max_days):
        raise InvalidInput(
            f"review_due must be after today and at most {settings.officer_review_max_days} "
            "days ahead"
        )
    officer_id = proposal.account_id
    try:
        async with acting_as(pool, principal) as conn:
            account = await queries.account_role(conn, officer_id)
            if account is None:
                raise NotFound("No such account")
            if account.role != Role.OFFICER or account.status != "active":
                raise Conflict("Only an enrolled, active officer account can be vetted")
            vetting = await queries.vetting_for_update(conn, officer_id)
            renewal = vetting is not None
            if vetting is None:
                if not await queries.propose(
                    conn,
                    officer_id,
                    proposal.unit,
                    proposal.rank,
                    proposal.review_due,
                    principal.account_id,
                ):
                    raise Conflict("This officer was proposed a moment ago")
            else:
                lapsed = vetting.status == VettingStatus.ACTIVE and vetting.overdue
                if vetting.status != VettingStatus.SUSPENDED and not lapsed:
                    raise Conflict(f"This officer's vetting is {vetting.status}")
                await queries.repropose(
                    conn,
                    officer_id,
                    proposal.unit,
                    proposal.rank,
                    proposal.review_due,
                    principal.account_id,
                )
            await record(
                conn,
                AuditAction.OFFICER_PROPOSED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="officer",
                subject_id=str(officer_id),
                detail={"review_due": proposal.review_due.isoformat(), "renewal": renewal},
            )
            return await _view(settings, conn, officer_id)
    except (Conflict, NotFound) as refused:
        await _refuse(pool, principal, officer_id, refused)
        raise


async def approve(
    settings: Settings, pool: db.Pool, principal: Principal, officer_id: UUID
) -> OfficerView:
    try:
        async with acting_as(pool, principal) as conn:
            vetting = await queries.vetting_for_update(conn, officer_id)
            if vetting is None:
                raise NotFound("No such officer")
            if vetting.status != VettingStatus.PROPOSED:
                raise Conflict(
                    f"Only a proposed officer can be approved; this one is {vetting.status}"
                )
            if vetting.proposed_by == principal.account_id:
                raise TwoPersonRule("The investigator who proposed an officer cannot approve them")
            await queries.approve(conn, officer_id, principal.account_id)
            await record(
                conn,
                AuditAction.OFFICER_APPROVED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="officer",
                subject_id=str(officer_id),
                detail={"proposed_by": str(vetting.proposed_by)},
            )
            return await _view(settings, conn, officer_id)
    except (Conflict, NotFound, TwoPersonRule) as refused:
        await _refuse(pool, principal, officer_id, refused)
        raise


async def suspend(pool: db.Pool, principal: Principal, officer_id: UUID) -> None:
    await _take_off(pool, principal, officer_id, VettingStatus.SUSPENDED)


async def revoke(pool: db.Pool, principal: Principal, officer_id: UUID) -> None:
    await _take_off(pool, principal, officer_id, VettingStatus.REVOKED)


async def _take_off(
    pool: db.Pool, principal: Principal, officer_id: UUID, status: VettingStatus
) -> None:
    allowed_from = {VettingStatus.PROPOSED, VettingStatus.ACTIVE}
    if status is VettingStatus.REVOKED:
        allowed_from.add(VettingStatus.SUSPENDED)
    try:
        async with acting_as(pool, principal) as conn:
            vetting = await queries.vetting_for_update(conn, officer_id)
            if vetting is None:
                raise NotFound("No such officer")
            if vetting.status not in allowed_from:
                raise Conflict(f"This officer's vetting is already {vetting.status}")
            await queries.set_status(conn, officer_id, status, principal.account_id)
            # Same transaction: the moment this commits, the officer has no session and the
            # share policies refuse every read (SEC-AUTHZ-05, SEC-SESS-06).
            ended = await queries.end_sessions(conn, officer_id)
            await record(
                conn,
                AuditAction.OFFICER_SUSPENDED
                if status is VettingStatus.SUSPENDED
                else AuditAction.OFFICER_REVOKED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="officer",
                subject_id=str(officer_id),
                detail={"from": vetting.status, "sessions_ended": ended},
            )
    except (Conflict, NotFound) as refused:
        await _refuse(pool, principal, officer_id, refused)
        raise


async def list_officers(settings: Settings, pool: db.Pool, principal: Principal) -> OfficerList:
    async with acting_as(pool, principal) as conn:
        return OfficerList(officers=await _views(settings, conn, None))


async def _view(settings: Settings, conn: db.Connection, officer_id: UUID) -> OfficerView:
    views = await _views(settings, conn, officer_id)
    if not views:
        raise NotFound("No such officer")
    return views[0]


async def _views(
    settings: Settings, conn: db.Connection, officer_id: UUID | None
) -> list[OfficerView]:
    rows = await queries.list_officers(conn, officer_id)
    readable: dict[UUID, list[ReadableShare]] = {}
    for share in await queries.readable_shares(conn):
        readable.setdefault(share.officer_id, []).append(
            ReadableShare(
                share_id=share.share_id, lead_id=share.lead_id, expires_at=share.expires_at
            )
        )
    alerts: dict[UUID, list[Alert]] = {}
    since = _today() - timedelta(days=settings.anomaly_history_days)
    for alert in await queries.recent_alerts(conn, since):
        alerts.setdefault(alert.officer_id, []).append(
            Alert(kind=AlertKind(alert.kind), raised_at=alert.raised_at)
        )
    return [
        OfficerView(
            account_id=r.account_id,
            handle=r.handle,
            unit=r.unit,
            rank=r.rank,
            review_due=r.review_due,
            status=VettingStatus(r.status),
            review_overdue=r.review_overdue,
            cleared=r.cleared,
            proposed_by=r.proposed_by,
            proposed_at=r.proposed_at,
            approved_by=r.approved_by,
            approved_at=r.approved_at,
            status_changed_by=r.status_changed_by,
            status_changed_at=r.status_changed_at,
            alerts=alerts.get(r.account_id, []),
            readable=readable.get(r.account_id, []) if r.cleared else [],
        )
        for r in rows
    ]


# --- access anomalies ---------------------------------------------------------------------------


async def _alert(
    conn: db.Connection, principal: Principal, kind: AlertKind, dedupe_s: float
) -> None:
    if await queries.raise_alert(conn, kind, dedupe_s):
        # Written in the officer's own request, as the officer: the audit log says whose
        # behaviour raised it, and investigators see the flag on the vetting list.
        await record(
            conn,
            AuditAction.OFFICER_FLAGGED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="officer",
            subject_id=str(principal.account_id),
            detail={"kind": kind.value},
        )


async def note_open(settings: Settings, conn: db.Connection, principal: Principal) -> None:
    """Checks an officer's opens after recording one, in the same transaction and clock."""
    counts = await queries.open_counts(
        conn,
        principal.account_id,
        settings.anomaly_burst_window_s,
        settings.anomaly_history_days,
        settings.anomaly_hour_tolerance_h,
    )
    if counts.recent >= settings.anomaly_burst_opens:
        await _alert(conn, principal, AlertKind.BURST, settings.anomaly_burst_window_s)
    if counts.history >= settings.anomaly_hour_min_history and counts.near_this_hour == 0:
        await _alert(conn, principal, AlertKind.UNUSUAL_HOUR, UNUSUAL_HOUR_DEDUPE_S)


async def note_refusal(
    settings: Settings, pool: db.Pool, principal: Principal, share_id: UUID | None
) -> None:
    """Counts a refused share access by an officer; enough of them in the window is an alert.

    Its own transaction, like the audit line of the refusal: the request itself fails.
    """
    if principal.role is not Role.OFFICER:
        return
    async with acting_as(pool, principal) as conn:
        await queries.record_failure(conn, principal.account_id, share_id)
        failures = await queries.recent_failures(
            conn, principal.account_id, settings.anomaly_failed_window_s
        )
        if failures >= settings.anomaly_failed_checks:
            await _alert(conn, principal, AlertKind.FAILED_CHECKS, settings.anomaly_failed_window_s)
