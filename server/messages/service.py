"""Message rules: who may write into a thread, the recipients an envelope must name, the inbox.

An investigator's reply is encrypted to the operative and to every investigator (so the thread
stays readable by the team); an operative's follow-up to every investigator.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

import msgspec

from server import db
from server.audit.actions import AuditAction
from server.audit.service import record
from server.envelope.sealed import check_sealed
from server.envelope.signatures import message_message
from server.errors import Conflict, InvalidInput, NotFound
from server.events.kinds import EventKind
from server.events.service import publish
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as
from server.identity.service import record_failure
from server.keys.service import current_directory, investigator_count
from server.messages import queries
from server.messages.schemas import (
    Inbox,
    MessageAccepted,
    MessageSubmission,
    Thread,
    ThreadMessage,
)
from server.reports.service import OutdatedDirectory
from server.settings import Settings

THREAD_LIMIT = 500
INBOX_LIMIT = 100


async def send(
    settings: Settings,
    pool: db.Pool,
    principal: Principal,
    report_id: UUID,
    submission: MessageSubmission,
) -> tuple[MessageAccepted, bool]:
    if len(submission.ciphertext) > settings.max_message_ciphertext_bytes:
        raise InvalidInput("The message ciphertext is too large")
    ciphertext_sha256 = hashlib.sha256(submission.ciphertext).hexdigest()
    async with acting_as(pool, principal) as conn:
        # Row-level security: an operative sees only their own reports.
        owner = await queries.report_owner(conn, report_id)
        if owner is None:
            raise NotFound("No such report")
        stored = await queries.existing(conn, submission.message_id)
        if stored is not None:
            return _replay(stored, report_id, principal, submission, ciphertext_sha256), False
        directory = await current_directory(conn)
    if directory is None or submission.directory_version != directory.version:
        raise OutdatedDirectory(directory.version if directory else None)
    expected = investigator_count(directory) + (1 if principal.role is Role.INVESTIGATOR else 0)
    try:
        check_sealed(
            submission.ciphertext,
            readers=expected,
            max_recipients=settings.max_envelope_recipients,
            max_bytes=settings.max_message_ciphertext_bytes,
            signed_bytes=message_message(
                submission.message_id, report_id, submission.sent_at, ciphertext_sha256
            ),
            device_key=principal.device_key,
            signature=submission.signature,
        )
    except InvalidInput as refused:
        await record_failure(
            pool,
            AuditAction.MESSAGE_REFUSED,
            reason=refused.slug,
            principal=principal,
            subject_type="message",
            subject_id=str(submission.message_id),
        )
        raise

    async with acting_as(pool, principal) as conn:
        received_at = await queries.insert(
            conn,
            queries.NewMessage(
                id=submission.message_id,
                report_id=report_id,
                author_id=principal.account_id,
                author_role=principal.role,
                device_id=principal.device_id,
                device_key=msgspec.json.encode(principal.device_key).decode(),
                sent_at=submission.sent_at,
                ciphertext=submission.ciphertext,
                ciphertext_sha256=ciphertext_sha256,
                signature=submission.signature,
            ),
        )
        if received_at is None:
            stored = await queries.existing(conn, submission.message_id)
            if stored is None:
                raise Conflict("Another message was already stored under this id")
            return _replay(stored, report_id, principal, submission, ciphertext_sha256), False
        await record(
            conn,
            AuditAction.MESSAGE_SENT,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="report",
            subject_id=str(report_id),
            detail={"message": str(submission.message_id)},
        )
        if principal.role is Role.INVESTIGATOR:
            await publish(
                conn,
                EventKind.MESSAGE_RECEIVED,
                subject_id=submission.message_id,
                report_id=report_id,
                audience_account=owner,
            )
        else:
            await publish(
                conn,
                EventKind.MESSAGE_RECEIVED,
                subject_id=submission.message_id,
                report_id=report_id,
                audience_role=Role.INVESTIGATOR,
            )
    return MessageAccepted(message_id=submission.message_id, received_at=received_at), True


def _replay(
    stored: queries.Stored,
    report_id: UUID,
    principal: Principal,
    submission: MessageSubmission,
    ciphertext_sha256: str,
) -> MessageAccepted:
    same = (
        stored.report_id == report_id
        and stored.author_id == principal.account_id
        and stored.ciphertext_sha256 == ciphertext_sha256
        and stored.signature == submission.signature
    )
    if not same:
        raise Conflict("Another message was already stored under this id")
    return MessageAccepted(message_id=submission.message_id, received_at=stored.received_at)


async def thread(pool: db.Pool, principal: Principal, report_id: UUID) -> Thread:
    async with acting_as(pool, principal) as conn:
        if await queries.report_owner(conn, report_id) is None:
            raise NotFound("No such report")
        rows = await queries.thread(conn, report_id, THREAD_LIMIT)
    team = principal.role is Role.INVESTIGATOR
    return Thread(
        messages=[
            ThreadMessage(
                id=r.id,
                report_id=r.report_id,
                author_role=r.author_role,
                author_id=r.author_id if team else None,
                device_key=msgspec.json.decode(r.device_jwk, type=dict[str, str]),
                sent_at=r.sent_at,
                received_at=r.received_at,
                ciphertext=r.ciphertext,
                ciphertext_sha256=r.ciphertext_sha256,
                signature=r.signature,
            )
            for r in rows
        ]
    )


async def inbox(pool: db.Pool, principal: Principal) -> Inbox:
    async with acting_as(pool, principal) as conn:
        return Inbox(messages=await queries.inbox(conn, principal.account_id, INBOX_LIMIT))


async def mark_read(pool: db.Pool, principal: Principal, message_id: UUID) -> None:
    async with acting_as(pool, principal) as conn:
        if await queries.existing(conn, message_id) is None:
            raise NotFound("No such message")
        await queries.mark_read(conn, message_id, principal.account_id)
