"""The retention job: crypto-shredding on a schedule (DESIGN §5, SEC-DATA-01).

Every replica schedules it; a transaction-scoped advisory lock makes one of them the run's
leader and the others skip, and every row is claimed with FOR UPDATE SKIP LOCKED and a status
check, so even two leaders could not delete one item twice. The database is changed first and
the stored objects deleted after it commits: a crash in between leaves an orphaned object of
ciphertext nobody can read, never a row that points at nothing.

`now` is a parameter the SQL compares with, not the database clock, so the thresholds can be
tested (and a backlog replayed) without waiting days.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final
from uuid import UUID

import msgspec

from server import db
from server.audit import service as audit
from server.audit.actions import AuditAction
from server.db import Connection
from server.errors import NotFound
from server.evidence import queries as evidence_queries
from server.evidence.service import EvidenceContext
from server.evidence.service import sweep_expired as sweep_expired_uploads
from server.evidence.storage import StorageError
from server.identity.service import IdentityContext
from server.identity.service import sweep_expired as sweep_identity
from server.retention import queries

RETENTION_ROLE: Final = "retention"
BATCH: Final = 200
# Dead sessions and idle throttle rows are kept a day, so an incident review the morning after
# still finds who was logged in; after that they are only metadata a seizure would expose.
SESSION_GRACE_S: Final = 86_400
THROTTLE_IDLE_S: Final = 86_400

_log = logging.getLogger("tipline.retention")


class RetentionContext:
    def __init__(self, identity: IdentityContext, evidence: EvidenceContext) -> None:
        self.identity = identity
        self.evidence = evidence
        self.settings = identity.settings


class RetentionRun(msgspec.Struct, frozen=True):
    # False when another replica held the run: this one changed nothing.
    leader: bool
    reports_shredded: int = 0
    attachments_shredded: int = 0
    sessions_deleted: int = 0
    throttle_rows_deleted: int = 0
    uploads_expired: int = 0


class _Batch(msgspec.Struct):
    reports: int = 0
    objects: list[queries.DueObject] = msgspec.field(default_factory=list)
    sessions: int = 0
    throttle: int = 0


async def run_scheduled(ctx: RetentionContext, pool: db.Pool) -> RetentionRun:
    return await run_retention(ctx, pool, now=datetime.now(UTC))


async def run_retention(ctx: RetentionContext, pool: db.Pool, *, now: datetime) -> RetentionRun:
    """One pass of the job as of `now`; returns what it deleted."""
    total = RetentionRun(leader=False)
    while True:
        batch = await _one_batch(ctx, pool, now)
        if batch is None:
            break
        await _delete_objects(ctx, batch.objects)
        total = RetentionRun(
            leader=True,
            reports_shredded=total.reports_shredded + batch.reports,
            attachments_shredded=total.attachments_shredded + len(batch.objects),
            sessions_deleted=total.sessions_deleted + batch.sessions,
            throttle_rows_deleted=total.throttle_rows_deleted + batch.throttle,
        )
        if batch.reports < BATCH and len(batch.objects) < BATCH:
            break
    if not total.leader:
        return total
    # The identity and upload sweepers also run on their own schedules on every replica; they
    # are idempotent, and calling them here makes one run of this job leave nothing expired.
    await sweep_identity(ctx.identity, pool)
    uploads = await sweep_expired_uploads(ctx.evidence, pool)
    return msgspec.structs.replace(total, uploads_expired=uploads)


async def _one_batch(ctx: RetentionContext, pool: db.Pool, now: datetime) -> _Batch | None:
    settings = ctx.settings
    batch = _Batch()
    async with db.transaction(pool, role=RETENTION_ROLE) as conn:
        if not await queries.try_lead(conn):
            return None
        report_ids = await queries.rejected_due(conn, now, settings.retention_rejected_days, BATCH)
        for report_id in report_ids:
            if await queries.shred_report(conn, report_id, now):
                batch.reports += 1
                await audit.record(
                    conn,
                    AuditAction.REPORT_SHREDDED,
                    actor_id=None,
                    actor_role=RETENTION_ROLE,
                    subject_type="report",
                    subject_id=str(report_id),
                    detail={"reason": "rejected", "after_days": settings.retention_rejected_days},
                )
        for item in await queries.evidence_of_reports(conn, report_ids):
            if await _shred_attachment(conn, item, "rejected", settings.retention_rejected_days):
                batch.objects.append(item)
        due = await queries.closed_lead_evidence_due(
            conn, now, settings.retention_closed_lead_days, BATCH
        )
        for item in due:
            if await _shred_attachment(
                conn, item, "lead_closed", settings.retention_closed_lead_days
            ):
                batch.objects.append(item)
        batch.sessions = await queries.sweep_sessions(conn, now, SESSION_GRACE_S)
        batch.throttle = await queries.sweep_login_throttle(conn, now, THROTTLE_IDLE_S)
    return batch


async def _shred_attachment(
    conn: Connection, item: queries.DueObject, reason: str, after_days: int
) -> bool:
    if not await queries.shred_attachment(conn, item.id):
        return False
    # The audit event is the sealed record; the custody row indexes it by attachment, so the
    # evidence's own history ends with who deleted it, when and why.
    audit_id = await audit.record(
        conn,
        AuditAction.ATTACHMENT_DELETED,
        actor_id=None,
        actor_role=RETENTION_ROLE,
        subject_type="attachment",
        subject_id=str(item.id),
        detail={"reason": reason, "after_days": after_days, "report": str(item.report_id)},
    )
    await evidence_queries.record_custody(
        conn,
        attachment_id=item.id,
        audit_event_id=audit_id,
        event="deleted",
        actor_id=None,
        actor_role=RETENTION_ROLE,
    )
    return True


async def _delete_objects(ctx: RetentionContext, objects: list[queries.DueObject]) -> None:
    for item in objects:
        try:
            await ctx.evidence.storage.delete(item.storage_key, item.storage_state)
        except (StorageError, OSError):
            # The row already says deleted; the object is ciphertext without a key. Logged
            # without the key so an operator can look for orphans (docs/operations.md).
            _log.warning("could not delete a retired evidence object")


async def place_hold(pool: db.Pool, lead_id: UUID, *, placed_by: UUID | None = None) -> bool:
    """Puts a lead on legal hold; False if it already was. Audited."""
    async with db.transaction(pool, role=RETENTION_ROLE) as conn:
        if not await queries.lead_exists(conn, lead_id):
            raise NotFound("No such lead")
        placed = await queries.place_hold(conn, lead_id, placed_by)
        if placed:
            await audit.record(
                conn,
                AuditAction.LEAD_HOLD_PLACED,
                actor_id=None,
                actor_role=RETENTION_ROLE,
                subject_type="lead",
                subject_id=str(lead_id),
            )
    return placed


async def release_hold(pool: db.Pool, lead_id: UUID) -> bool:
    """Lifts a lead's legal hold; False if it had none. Audited."""
    async with db.transaction(pool, role=RETENTION_ROLE) as conn:
        released = await queries.release_hold(conn, lead_id)
        if released:
            await audit.record(
                conn,
                AuditAction.LEAD_HOLD_RELEASED,
                actor_id=None,
                actor_role=RETENTION_ROLE,
                subject_type="lead",
                subject_id=str(lead_id),
            )
    return released
