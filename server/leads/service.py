"""Lead and share rules: built from verified reports, shared narrowly, briefly and accountably.

The server never reads a lead. It checks what it can without reading: that each share is an
age file for exactly one recipient (its officer, who must be in the signed key directory), that
the officer is vetted and cleared now, that the window is sane and short, that the lead stays
within the need-to-know limit, and (dual control) that a second investigator approved. Whether
an officer can open a share is decided by PostgreSQL, with its own clock, on every statement
(0008_officers_leads.sql); the checks here repeat it so that refusals have clear answers.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from uuid import UUID

from server import db
from server.audit.actions import AuditAction
from server.audit.service import record
from server.envelope.age_header import check_age_ciphertext
from server.errors import Conflict, InvalidInput, NotFound, TiplineError
from server.events.kinds import EventKind
from server.events.service import publish
from server.identity.principal import Principal, acting_as
from server.identity.service import record_failure
from server.keys.service import Directory, current_directory, investigator_count
from server.leads import queries
from server.leads.schemas import (
    AccessLog,
    Assignments,
    LeadCreated,
    LeadDetail,
    LeadRequest,
    LeadStatus,
    OutcomeRequest,
    OutcomeView,
    ShareContent,
    ShareRequest,
    ShareView,
)
from server.officers import service as officers
from server.officers.service import TwoPersonRule
from server.reports.service import OutdatedDirectory
from server.settings import Settings

OFFICER = "officer"


class UnverifiedReport(Conflict):
    slug, title = "unverified-report", "A lead is built from verified reports only"


class OfficerNotCleared(Conflict):
    slug, title = "officer-not-cleared", "The officer is not vetted and active"


class NeedToKnow(Conflict):
    slug, title = "need-to-know", "The lead is already held by as many officers as allowed"


class InvalidWindow(InvalidInput):
    slug, title = "invalid-window", "The share's window is not acceptable"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_time(value: str) -> datetime:
    # The schema already fixed the spelling; this refuses impossible dates (2026-02-30).
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidWindow("Not a real time") from None


def _check_directory(directory: Directory | None, version: int) -> Directory:
    if directory is None or directory.version != version:
        raise OutdatedDirectory(directory.version if directory else None)
    return directory


def _check_ciphertext(settings: Settings, ciphertext: bytes, readers: int) -> None:
    if len(ciphertext) > settings.max_share_ciphertext_bytes:
        raise InvalidInput("The ciphertext is too large")
    form = check_age_ciphertext(
        ciphertext,
        max_recipients=settings.max_envelope_recipients,
        max_bytes=settings.max_share_ciphertext_bytes,
    )
    if form.recipients != readers:
        raise InvalidInput("The ciphertext must be encrypted to exactly its readers")


async def _refused(
    pool: db.Pool,
    principal: Principal,
    action: AuditAction,
    refused: TiplineError,
    subject_type: str,
    subject_id: UUID,
) -> None:
    await record_failure(
        pool,
        action,
        reason=refused.slug,
        principal=principal,
        subject_type=subject_type,
        subject_id=str(subject_id),
    )


# --- investigators: leads -----------------------------------------------------------------------


async def create_lead(
    settings: Settings, pool: db.Pool, principal: Principal, request: LeadRequest
) -> LeadCreated:
    report_ids = sorted(set(request.report_ids))
    if len(report_ids) != len(request.report_ids):
        raise InvalidInput("A report is named twice")
    try:
        async with acting_as(pool, principal) as conn:
            if await queries.verified_count(conn, report_ids) != len(report_ids):
                raise UnverifiedReport("Every report must exist and be verified")
            directory = _check_directory(await current_directory(conn), request.directory_version)
            _check_ciphertext(settings, request.ciphertext, investigator_count(directory))
            created = await queries.create(conn, principal.account_id, request.ciphertext)
            await queries.link_reports(conn, created.id, report_ids)
            await record(
                conn,
                AuditAction.LEAD_CREATED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="lead",
                subject_id=str(created.id),
                detail={"reports": len(report_ids)},
            )
    except (UnverifiedReport, OutdatedDirectory, InvalidInput) as refused:
        await record_failure(
            pool, AuditAction.LEAD_REFUSED, reason=refused.slug, principal=principal
        )
        raise
    return LeadCreated(
        id=created.id, status=LeadStatus(created.status), created_at=created.created_at
    )


async def lead_detail(pool: db.Pool, principal: Principal, lead_id: UUID) -> LeadDetail:
    async with acting_as(pool, principal) as conn:
        row = await queries.lead(conn, lead_id)
        if row is None:
            raise NotFound("No such lead")
        return LeadDetail(
            id=row.id,
            status=LeadStatus(row.status),
            created_by=row.created_by,
            created_at=row.created_at,
            ciphertext=row.ciphertext,
            report_ids=row.report_ids,
            shares=await queries.shares(conn, lead_id=lead_id),
            outcomes=await queries.outcomes(conn, lead_id),
        )


async def close_lead(pool: db.Pool, principal: Principal, lead_id: UUID) -> None:
    async with acting_as(pool, principal) as conn:
        lead = await queries.lead_for_update(conn, lead_id)
        if lead is None:
            raise NotFound("No such lead")
        if lead.status == LeadStatus.CLOSED:
            raise Conflict("The lead is already closed")
        # Closing ends every officer's access in the same transaction.
        revoked = await queries.revoke_lead_shares(conn, lead_id, principal.account_id)
        await queries.set_status(conn, lead_id, LeadStatus.CLOSED)
        for share_id in revoked:
            await record(
                conn,
                AuditAction.SHARE_REVOKED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="share",
                subject_id=str(share_id),
                detail={"lead": str(lead_id), "reason": "lead-closed"},
            )
        await record(
            conn,
            AuditAction.LEAD_CLOSED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="lead",
            subject_id=str(lead_id),
            detail={"from": lead.status, "shares_revoked": len(revoked)},
        )


async def access_log(pool: db.Pool, principal: Principal, lead_id: UUID) -> AccessLog:
    async with acting_as(pool, principal) as conn:
        if await queries.lead(conn, lead_id) is None:
            raise NotFound("No such lead")
        return AccessLog(lead_id=lead_id, entries=await queries.access_log(conn, lead_id))


# --- investigators: shares ----------------------------------------------------------------------


def _check_window(settings: Settings, request: ShareRequest) -> tuple[datetime, datetime]:
    not_before = parse_time(request.not_before)
    expires_at = parse_time(request.expires_at)
    if expires_at <= not_before:
        raise InvalidWindow("expires_at must be after not_before")
    if (expires_at - not_before).total_seconds() > settings.share_max_window_s:
        raise InvalidWindow(f"A share may stay open at most {settings.share_max_window_s} s")
    if expires_at <= datetime.now(UTC):
        raise InvalidWindow("The window is already over")
    return not_before, expires_at


async def share(
    settings: Settings, pool: db.Pool, principal: Principal, lead_id: UUID, request: ShareRequest
) -> ShareView:
    try:
        not_before, expires_at = _check_window(settings, request)
        async with acting_as(pool, principal) as conn:
            lead = await queries.lead_for_update(conn, lead_id)
            if lead is None:
                raise NotFound("No such lead")
            if lead.status not in {LeadStatus.OPEN, LeadStatus.SHARED}:
                raise Conflict(f"A lead that is {lead.status} cannot be shared")
            if not await queries.officer_cleared(conn, request.officer_id):
                raise OfficerNotCleared("Share only with a vetted, active officer")
            directory = _check_directory(await current_directory(conn), request.directory_version)
            # The share must be sealed to a key the offline root signed for this officer; the
            # server cannot see which recipient it names, only that there is exactly one.
            if not any(
                e.account_id == request.officer_id and e.role == OFFICER for e in directory.entries
            ):
                raise OfficerNotCleared("The officer is not in the signed key directory")
            _check_ciphertext(settings, request.ciphertext, 1)
            # The lead row is locked, so two concurrent shares cannot both pass this count.
            holding = await queries.officers_holding(conn, lead_id)
            if request.officer_id not in holding and len(holding) >= settings.lead_max_officers:
                raise NeedToKnow(f"At most {settings.lead_max_officers} officers may hold a lead")
            share_id = await queries.insert_share(
                conn,
                queries.NewShare(
                    lead_id=lead_id,
                    officer_id=request.officer_id,
                    created_by=principal.account_id,
                    not_before=not_before,
                    expires_at=expires_at,
                    directory_version=directory.version,
                    ciphertext=request.ciphertext,
                    ciphertext_sha256=sha256_hex(request.ciphertext),
                    trace_digest=request.trace_digest,
                    requires_approval=settings.share_dual_control,
                ),
            )
            if share_id is None:
                raise Conflict("This trace digest is already used; make a new trace code")
            if lead.status == LeadStatus.OPEN:
                await queries.set_status(conn, lead_id, LeadStatus.SHARED)
            await record(
                conn,
                AuditAction.SHARE_CREATED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="share",
                subject_id=str(share_id),
                detail={
                    "lead": str(lead_id),
                    "officer": str(request.officer_id),
                    "not_before": request.not_before,
                    "expires_at": request.expires_at,
                    "pending": settings.share_dual_control,
                },
            )
            view = (await queries.shares(conn, share_id=share_id))[0]
            if view.readable_now:
                await _announce(conn, view)
            return view
    except (NotFound, Conflict, InvalidInput, OutdatedDirectory) as refused:
        await _refused(pool, principal, AuditAction.SHARE_REFUSED, refused, "lead", lead_id)
        raise


async def _announce(conn: db.Connection, view: ShareView) -> None:
    # Ids only. A share whose window has not opened is not announced: before not_before the
    # officer must not even learn that it exists.
    await publish(
        conn,
        EventKind.SHARE_AVAILABLE,
        subject_id=view.id,
        report_id=view.lead_id,
        audience_account=view.officer_id,
    )


async def approve_share(pool: db.Pool, principal: Principal, share_id: UUID) -> ShareView:
    try:
        async with acting_as(pool, principal) as conn:
            state = await queries.share_for_update(conn, share_id)
            if state is None:
                raise NotFound("No such share")
            if state.revoked_at is not None:
                raise Conflict("The share is revoked")
            if not state.requires_approval or state.approved_at is not None:
                raise Conflict("The share needs no further approval")
            if state.created_by == principal.account_id:
                raise TwoPersonRule("The investigator who made a share cannot approve it")
            await queries.approve_share(conn, share_id, principal.account_id)
            await record(
                conn,
                AuditAction.SHARE_APPROVED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="share",
                subject_id=str(share_id),
                detail={"lead": str(state.lead_id), "created_by": str(state.created_by)},
            )
            view = (await queries.shares(conn, share_id=share_id))[0]
            if view.readable_now:
                await _announce(conn, view)
            return view
    except (NotFound, Conflict, TwoPersonRule) as refused:
        await _refused(pool, principal, AuditAction.SHARE_REFUSED, refused, "share", share_id)
        raise


async def revoke_share(pool: db.Pool, principal: Principal, share_id: UUID) -> None:
    async with acting_as(pool, principal) as conn:
        state = await queries.share_for_update(conn, share_id)
        if state is None:
            raise NotFound("No such share")
        if state.revoked_at is not None:
            return  # DELETE is idempotent; the first revocation was audited
        await queries.revoke_share(conn, share_id, principal.account_id)
        await record(
            conn,
            AuditAction.SHARE_REVOKED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="share",
            subject_id=str(share_id),
            detail={"lead": str(state.lead_id), "officer": str(state.officer_id)},
        )


# --- officers -----------------------------------------------------------------------------------


async def assignments(pool: db.Pool, principal: Principal) -> Assignments:
    async with acting_as(pool, principal) as conn:
        return Assignments(assignments=await queries.assignments(conn, principal.account_id))


async def _refuse_officer(
    settings: Settings, pool: db.Pool, principal: Principal, subject_type: str, subject_id: UUID
) -> NotFound:
    """Audits a refused access and counts it towards the repeated-failure alert. Not there,
    not theirs, not yet open, expired, revoked, suspended: one answer for all of them."""
    await record_failure(
        pool,
        AuditAction.SHARE_ACCESS_REFUSED,
        reason="not-visible",
        principal=principal,
        subject_type=subject_type,
        subject_id=str(subject_id),
    )
    await officers.note_refusal(
        settings, pool, principal, subject_id if subject_type == "share" else None
    )
    return NotFound("No such share" if subject_type == "share" else "No such lead")


async def open_share(
    settings: Settings, pool: db.Pool, principal: Principal, share_id: UUID
) -> ShareContent:
    async with acting_as(pool, principal) as conn:
        content = await queries.open_share(conn, share_id, principal.account_id)
        if content is not None:
            # The access log line and the audit line commit with the read, or neither does.
            await queries.record_access(conn, share_id, content.lead_id, principal.account_id)
            await record(
                conn,
                AuditAction.SHARE_READ,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="share",
                subject_id=str(share_id),
                detail={"lead": str(content.lead_id)},
            )
            await officers.note_open(settings, conn, principal)
            return content
    raise await _refuse_officer(settings, pool, principal, "share", share_id)


async def acknowledge(
    settings: Settings, pool: db.Pool, principal: Principal, share_id: UUID
) -> None:
    async with acting_as(pool, principal) as conn:
        content = await queries.open_share(conn, share_id, principal.account_id)
        if content is not None:
            if await queries.acknowledge(conn, share_id, principal.account_id):
                await record(
                    conn,
                    AuditAction.SHARE_ACKNOWLEDGED,
                    actor_id=principal.account_id,
                    actor_role=principal.role,
                    subject_type="share",
                    subject_id=str(share_id),
                    detail={"lead": str(content.lead_id)},
                )
            return
    raise await _refuse_officer(settings, pool, principal, "share", share_id)


async def record_outcome(
    settings: Settings,
    pool: db.Pool,
    principal: Principal,
    lead_id: UUID,
    request: OutcomeRequest,
) -> OutcomeView:
    async with acting_as(pool, principal) as conn:
        if await queries.officer_holds_open_share(conn, lead_id, principal.account_id):
            if request.note_ciphertext is not None:
                if request.directory_version is None:
                    raise InvalidInput("A note needs the directory_version it was sealed to")
                directory = _check_directory(
                    await current_directory(conn), request.directory_version
                )
                _check_ciphertext(settings, request.note_ciphertext, investigator_count(directory))
            status = await queries.lead_status(conn, lead_id)
            recorded = await queries.insert_outcome(
                conn,
                lead_id,
                principal.account_id,
                request.outcome,
                request.arrests,
                request.victims_safe,
                request.note_ciphertext,
            )
            if status == LeadStatus.SHARED:
                await queries.set_status(conn, lead_id, LeadStatus.ACTIONED)
            await record(
                conn,
                AuditAction.LEAD_OUTCOME_RECORDED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="lead",
                subject_id=str(lead_id),
                detail={
                    "outcome": request.outcome.value,
                    "arrests": request.arrests,
                    "victims_safe": request.victims_safe,
                },
            )
            return OutcomeView(
                id=recorded.id,
                lead_id=lead_id,
                officer_id=principal.account_id,
                outcome=request.outcome,
                arrests=request.arrests,
                victims_safe=request.victims_safe,
                note_ciphertext=request.note_ciphertext,
                recorded_at=recorded.recorded_at,
            )
    raise await _refuse_officer(settings, pool, principal, "lead", lead_id)
