"""Report rules: intake (verify, store once, receipt), the queue, and triage.

The server checks everything it can without reading the report: the device's signature over
the exact ciphertext, the age envelope's form, and that the device encrypted to the current
key directory. It stores ciphertext only, commits, and only then answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import asyncpg
import msgspec

from server import db
from server.audit.actions import AuditAction
from server.audit.service import encode_detail, record
from server.envelope.sealed import check_sealed
from server.envelope.signatures import AttachmentDigest, receipt_hash, report_message
from server.errors import Conflict, InvalidInput, NotFound, TiplineError
from server.events.kinds import EventKind
from server.events.service import publish
from server.evidence.service import check_citations
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as
from server.identity.service import record_failure
from server.keys.service import DirectoryCache, current_version, investigator_count
from server.reports import queries
from server.reports.schemas import (
    OwnPage,
    OwnReport,
    QueuePage,
    Receipt,
    ReportDetail,
    ReportSubmission,
    Status,
    TriageRequest,
    TriageResult,
)
from server.settings import Settings

# The triage workflow (issue 4): anything not listed is refused.
TRANSITIONS: Final[Mapping[Status, frozenset[Status]]] = {
    Status.NEW: frozenset({Status.IN_REVIEW}),
    Status.IN_REVIEW: frozenset(
        {Status.VERIFIED, Status.REJECTED, Status.DUPLICATE, Status.NEEDS_INFO}
    ),
    Status.NEEDS_INFO: frozenset({Status.IN_REVIEW}),
    Status.VERIFIED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.DUPLICATE: frozenset(),
}


class OutdatedDirectory(TiplineError):
    status, slug, title = 409, "outdated-directory", "Encrypted to an outdated key directory"

    def __init__(self, current_version: int | None) -> None:
        super().__init__(
            f"Re-encrypt to key directory version {current_version}"
            if current_version
            else "No key directory has been published yet",
            extensions={"current_version": current_version or 0},
        )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_to_the_second() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# --- intake -------------------------------------------------------------------------------------


async def submit(
    settings: Settings,
    pool: db.Pool,
    directories: DirectoryCache,
    principal: Principal,
    submission: ReportSubmission,
) -> tuple[Receipt, bool]:
    """The receipt, and whether this call stored the report (False: a retry of a stored one)."""
    if len(submission.ciphertext) > settings.max_report_ciphertext_bytes:
        raise InvalidInput("The report ciphertext is too large")
    ciphertext_sha256 = sha256_hex(submission.ciphertext)
    received_at = now_to_the_second()
    receipt = Receipt(
        report_id=submission.report_id,
        received_at=rfc3339(received_at),
        receipt=receipt_hash(
            submission.report_id, rfc3339(received_at), ciphertext_sha256, submission.signature
        ),
    )
    if principal.duress:
        # A coerced phone gets a receipt like any other and nothing is stored or announced.
        return receipt, True

    # Checked against the version the phone says it encrypted to; whether that is still the
    # current one is decided atomically with the insert (0010_intake_statements.sql).
    directory = directories.cached(submission.directory_version)
    if directory is None:
        async with acting_as(pool, principal) as conn:
            directory = await directories.at(conn, submission.directory_version)
            if directory is None:
                raise OutdatedDirectory(await current_version(conn))
    digests = [
        AttachmentDigest(a.attachment_id, a.plaintext_sha256, a.ciphertext_sha256)
        for a in submission.attachments
    ]
    try:
        check_sealed(
            submission.ciphertext,
            readers=investigator_count(directory),
            max_recipients=settings.max_envelope_recipients,
            max_bytes=settings.max_report_ciphertext_bytes,
            signed_bytes=report_message(
                submission.report_id, submission.sent_at, ciphertext_sha256, digests
            ),
            device_key=principal.device_key,
            signature=submission.signature,
        )
    except InvalidInput as refused:
        async with acting_as(pool, principal) as conn:
            if await queries.is_stored(conn, submission.report_id):
                # Other bytes under an id this operative already used: a conflict, whatever
                # else is wrong with them (DESIGN §3 idempotency).
                raise Conflict("Another report was already stored under this id") from None
        await record_failure(
            pool,
            AuditAction.REPORT_REFUSED,
            reason=refused.slug,
            principal=principal,
            subject_type="report",
            subject_id=str(submission.report_id),
        )
        raise
    if digests:
        async with acting_as(pool, principal) as conn:
            await check_citations(
                conn,
                operative_id=principal.account_id,
                report_id=submission.report_id,
                attachments=digests,
            )

    try:
        async with db.self_contained(pool) as conn:
            intake = await _store(
                conn, principal, submission, ciphertext_sha256, digests, receipt, received_at
            )
    except asyncpg.UniqueViolationError:
        # An attachment was cited by another report between the check above and the insert.
        raise Conflict("An attachment is already part of another report") from None
    if intake.outcome == "created":
        return receipt, True
    if intake.outcome == "outdated":
        raise OutdatedDirectory(intake.current_version)
    if intake.outcome == "stored":
        return _replay(intake, submission, ciphertext_sha256), False
    # 'taken': the row is not visible to this operative, so someone else's report holds the id.
    raise Conflict("Another report was already stored under this id")


async def _store(
    conn: db.Connection,
    principal: Principal,
    submission: ReportSubmission,
    ciphertext_sha256: str,
    digests: list[AttachmentDigest],
    receipt: Receipt,
    received_at: datetime,
) -> queries.Intake:
    return await queries.submit(
        conn,
        queries.NewReport(
            id=submission.report_id,
            operative_id=principal.account_id,
            device_id=principal.device_id,
            sent_at=submission.sent_at,
            received_at=received_at,
            directory_version=submission.directory_version,
            ciphertext=submission.ciphertext,
            ciphertext_sha256=ciphertext_sha256,
            signature=submission.signature,
            receipt=receipt.receipt,
        ),
        role=principal.role,
        duress=principal.duress,
        audit_detail_json=encode_detail(
            {
                "bytes": len(submission.ciphertext),
                "directory": submission.directory_version,
                "attachments": len(digests),
            }
        ),
        attachments=digests,
    )


def _replay(
    stored: queries.Intake, submission: ReportSubmission, ciphertext_sha256: str
) -> Receipt:
    same = (
        stored.ciphertext_sha256 == ciphertext_sha256
        and stored.signature == submission.signature
        and stored.sent_at == submission.sent_at
    )
    if not same or stored.receipt is None or stored.received_at is None:
        raise Conflict("Another report was already stored under this id")
    return Receipt(
        report_id=submission.report_id,
        received_at=rfc3339(stored.received_at),
        receipt=stored.receipt,
    )


# --- reading ------------------------------------------------------------------------------------


def encode_cursor(received_at: datetime, report_id: UUID) -> str:
    raw = msgspec.json.encode([received_at.isoformat(), str(report_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, report_id = msgspec.json.decode(raw, type=tuple[datetime, UUID])
    except (binascii.Error, ValueError, msgspec.MsgspecError):
        raise InvalidInput("The cursor is not one this server issued") from None
    return moment, report_id


async def queue(
    pool: db.Pool,
    principal: Principal,
    *,
    status: Status | None,
    priority: int | None,
    received_from: datetime | None,
    received_until: datetime | None,
    operative_id: UUID | None,
    cursor: str | None,
    limit: int,
) -> QueuePage | OwnPage:
    after = decode_cursor(cursor)
    async with acting_as(pool, principal) as conn:
        if principal.role is not Role.INVESTIGATOR:
            rows = await queries.own(conn, principal.account_id, after, limit)
            own = [
                OwnReport(id=r.id, status=Status(r.status), received_on=r.received_at.date())
                for r in rows
            ]
            last = rows[-1] if len(rows) == limit else None
            return OwnPage(
                reports=own,
                next_cursor=encode_cursor(last.received_at, last.id) if last else None,
            )
        items = await queries.queue(
            conn,
            status=status,
            priority=priority,
            received_from=received_from,
            received_until=received_until,
            operative_id=operative_id,
            after=after,
            limit=limit,
        )
    tail = items[-1] if len(items) == limit else None
    return QueuePage(
        reports=items, next_cursor=encode_cursor(tail.received_at, tail.id) if tail else None
    )


async def read(pool: db.Pool, principal: Principal, report_id: UUID) -> ReportDetail | OwnReport:
    async with acting_as(pool, principal) as conn:
        row = await queries.full(conn, report_id)
        investigator = row is not None and principal.role is Role.INVESTIGATOR
        cited = await queries.attachments(conn, report_id) if investigator else []
    # Row-level security hides other operatives' reports: absent and forbidden look the same.
    if row is None:
        raise NotFound("No such report")
    if principal.role is not Role.INVESTIGATOR:
        return OwnReport(id=row.id, status=Status(row.status), received_on=row.received_at.date())
    return ReportDetail(
        id=row.id,
        operative_id=row.operative_id,
        device_id=row.device_id,
        device_key=msgspec.json.decode(row.device_jwk, type=dict[str, str]),
        sent_at=row.sent_at,
        received_at=rfc3339(row.received_at),
        directory_version=row.directory_version,
        ciphertext=row.ciphertext,
        ciphertext_sha256=row.ciphertext_sha256,
        signature=row.signature,
        receipt=row.receipt,
        status=Status(row.status),
        priority=row.priority,
        attachments=cited,
    )


# --- triage -------------------------------------------------------------------------------------


async def triage(
    pool: db.Pool, principal: Principal, report_id: UUID, change: TriageRequest
) -> TriageResult:
    if change.status is None and change.priority is None:
        raise InvalidInput("Nothing to change: give a status, a priority or both")
    async with acting_as(pool, principal) as conn:
        state = await queries.status_of(conn, report_id)
        if state is None:
            raise NotFound("No such report")
        current = Status(state.status)
        status = change.status or current
        if change.status is not None and change.status not in TRANSITIONS[current]:
            raise Conflict(f"A report that is {current} cannot become {change.status}")
        priority = state.priority if change.priority is None else change.priority
        await queries.set_triage(conn, report_id, status, priority)
        await record(
            conn,
            AuditAction.REPORT_STATUS_CHANGED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="report",
            subject_id=str(report_id),
            detail={"from": current.value, "to": status.value, "priority": priority},
        )
        if status is not current:
            # The operative learns their report moved (ids only); so does the team.
            await publish(
                conn,
                EventKind.REPORT_STATUS_CHANGED,
                subject_id=report_id,
                report_id=report_id,
                audience_account=state.operative_id,
            )
            await publish(
                conn,
                EventKind.REPORT_STATUS_CHANGED,
                subject_id=report_id,
                report_id=report_id,
                audience_role=Role.INVESTIGATOR,
            )
    return TriageResult(id=report_id, status=status, priority=priority)
