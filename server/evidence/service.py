"""Evidence rules: resumable uploads (tus 1.0.0), completion, download and chain of custody.

The server only ever holds age ciphertext. An upload belongs to the account that created it
(another account gets the same 404 as an unknown id, SEC-AUTHZ-02); its bytes must hash to the
SHA-256 the client declared before it becomes a complete, immutable attachment; every event in
its life is an audit event (sealed into the hash chain) and a custody row pointing at it.

Whole-file SHA-256 across requests: hashlib objects cannot be serialised, and a digest of the
chunk digests is not the file's SHA-256. So the stored bytes are the truth: on completion the
server re-reads the object (streamed) and hashes it, which works after a restart, on another
replica and for S3. To skip that second read in the common case, a process keeps the running
hasher of an upload whose every byte it has seen in order (a bounded cache); it is consumed by
the next PATCH at exactly that offset and dropped on any refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import msgspec

from server import db
from server.audit import service as audit
from server.audit.actions import AuditAction
from server.db import Connection
from server.envelope.age_header import (
    CHUNK_PLAINTEXT_BYTES,
    CHUNK_TAG_BYTES,
    MAX_HEADER_BYTES,
    PAYLOAD_NONCE_BYTES,
    MalformedEnvelope,
    check_age_ciphertext,
)
from server.envelope.signatures import AttachmentDigest
from server.errors import (
    ChecksumMismatch,
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    TooManyRequests,
)
from server.evidence import queries
from server.evidence.storage import Storage, StorageError
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as
from server.identity.service import record_failure
from server.settings import Settings

SWEEPER_ROLE: Final = "evidence_sweeper"
SUBJECT: Final = "attachment"
SWEEP_BATCH: Final = 100
DIGEST_CACHE_ENTRIES: Final = 1024
# A duress session's uploads are remembered (lengths and offsets) up to this many per account,
# least recently written first out: a coerced phone cannot grow the table.
DECOYS_PER_ACCOUNT: Final = 256
DAY_S: Final = 86_400
# States in which an upload still belongs to its uploader's tus session.
OPEN: Final = frozenset({"uploading", "finalizing"})
# The audit reason of a refused look at an upload or attachment (fixed: never client text).
REFUSED_REASON: Final = "attachment-not-visible"
# An operative may fetch their own evidence back only while no investigator has picked up the
# report citing it: after triage it is the case's, not the phone's.
UNTRIAGED: Final = "new"

_log = logging.getLogger("tipline.evidence")


class Upload(msgspec.Struct, frozen=True):
    attachment_id: UUID
    offset: int
    length: int
    expires_at: datetime | None
    complete: bool


class NewUpload(msgspec.Struct, frozen=True):
    attachment_id: UUID
    length: int
    ciphertext_sha256: str


# A tus Upload-Checksum: the algorithm ("sha1" or "sha256") and the digest it declares.
Checksum = tuple[str, bytes]


class CustodyEvent(msgspec.Struct, frozen=True):
    event: str
    occurred_at: datetime
    actor_id: UUID | None
    actor_role: str | None
    audit_event_id: int
    range_start: int | None = None
    range_end: int | None = None


class CustodyLog(msgspec.Struct, frozen=True):
    attachment_id: UUID
    status: str
    events: list[CustodyEvent]


class Download(msgspec.Struct, frozen=True):
    attachment_id: UUID
    start: int
    end: int
    total: int
    ciphertext_sha256: str
    partial: bool
    chunks: AsyncIterator[bytes]


class _DigestCache:
    """Running whole-file hashers by upload, valid only at the offset they reached."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[UUID, tuple[int, Any]] = OrderedDict()

    def take(self, attachment_id: UUID, offset: int) -> Any:
        entry = self._entries.pop(attachment_id, None)
        if entry is not None and entry[0] == offset:
            return entry[1]
        return hashlib.sha256() if offset == 0 else None

    def keep(self, attachment_id: UUID, offset: int, hasher: Any) -> None:
        self._entries[attachment_id] = (offset, hasher)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


class EvidenceContext:
    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.digests = _DigestCache(DIGEST_CACHE_ENTRIES)
        self.patching = 0

    @contextlib.asynccontextmanager
    async def patch_slot(self) -> AsyncIterator[None]:
        # Each streamed body holds a connection, a buffer (up to one S3 part) and a lease:
        # past the cap a client waits and retries instead of exhausting the process.
        if self.patching >= self.settings.evidence_max_concurrent_patches:
            raise TooManyRequests(
                retry_after_s=1, detail="The server is receiving too many uploads; retry shortly"
            )
        self.patching += 1
        try:
            yield
        finally:
            self.patching -= 1


def _new_storage_key() -> str:
    return secrets.token_hex(16)


async def _custody(
    conn: Connection,
    action: AuditAction,
    event: str,
    attachment_id: UUID,
    *,
    actor_id: UUID | None,
    actor_role: str | None,
    range_start: int | None = None,
    range_end: int | None = None,
    detail: dict[str, str | int | bool] | None = None,
) -> None:
    # The audit event is the sealed record; the custody row indexes it by attachment.
    audit_id = await audit.record(
        conn,
        action,
        actor_id=actor_id,
        actor_role=actor_role,
        subject_type=SUBJECT,
        subject_id=str(attachment_id),
        detail=detail or {},
    )
    await queries.record_custody(
        conn,
        attachment_id=attachment_id,
        audit_event_id=audit_id,
        event=event,
        actor_id=actor_id,
        actor_role=actor_role,
        range_start=range_start,
        range_end=range_end,
    )


async def _not_found(
    pool: db.Pool, principal: Principal, attachment_id: UUID, detail: str
) -> NotFound:
    # SEC-LOG-01: a refused look at an upload or attachment (unknown, another account's,
    # finished with) is audited; the answer stays the one 404 for all of them (SEC-AUTHZ-02).
    if not principal.duress:
        await record_failure(
            pool,
            AuditAction.ACCESS_DENIED,
            reason=REFUSED_REASON,
            principal=principal,
            subject_type=SUBJECT,
            subject_id=str(attachment_id),
        )
    return NotFound(detail)


def _upload_of(row: queries.UploadRow | queries.DecoyRow) -> Upload:
    return Upload(
        attachment_id=row.id,
        offset=row.upload_offset,
        length=row.upload_length,
        expires_at=row.expires_at if row.status in OPEN else None,
        complete=row.status == "complete",
    )


def _retried(existing: queries.UploadRow | queries.DecoyRow, new: NewUpload) -> Upload:
    if (
        existing.status in OPEN
        and not existing.expired
        and existing.upload_length == new.length
        and existing.declared_sha256 == new.ciphertext_sha256
    ):
        return _upload_of(existing)
    # Taken by another account, finished, or declared differently: one answer for all.
    raise Conflict("This attachment id is already in use")


def _check_quota(settings: Settings, usage: queries.Quota, length: int) -> None:
    if usage.open_uploads >= settings.evidence_max_open_uploads:
        raise TooManyRequests(
            retry_after_s=usage.open_free_s or 1,
            detail="Too many unfinished uploads: finish or terminate one first",
        )
    if usage.declared_today + length > settings.evidence_max_bytes_per_day:
        raise TooManyRequests(
            retry_after_s=usage.bytes_free_s or DAY_S,
            detail="This account declared too many upload bytes in the last 24 hours",
        )


async def create_upload(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, new: NewUpload
) -> Upload:
    """tus creation; retrying the same creation returns the same upload (its current offset)."""
    settings = ctx.settings
    if new.length > settings.evidence_max_upload_bytes:
        raise PayloadTooLarge("The attachment is larger than the server accepts")
    if new.length > settings.evidence_max_bytes_per_day:
        # Could never fit in a day's allowance, so waiting (429) would not help.
        raise PayloadTooLarge("The attachment is larger than an account may upload in a day")
    if principal.duress:
        return await _create_decoy(ctx, pool, principal, new)
    # Cheap checks first, so a retry or a refusal never costs a storage object.
    async with acting_as(pool, principal) as conn:
        existing = await queries.own_upload(conn, new.attachment_id, principal.account_id)
        usage = (
            None
            if existing is not None
            else await queries.quota(
                conn,
                principal.account_id,
                upload_length=new.length,
                max_bytes_per_day=settings.evidence_max_bytes_per_day,
            )
        )
    if existing is not None:
        return _retried(existing, new)
    assert usage is not None
    _check_quota(settings, usage, new.length)
    key = _new_storage_key()
    state = await ctx.storage.create(key)
    try:
        async with acting_as(pool, principal) as conn:
            # The quota is enforced by the insert itself, under a per-account lock: two
            # concurrent creations cannot both take the last slot.
            await queries.lock_quota(conn, principal.account_id)
            expires_at = await queries.insert_upload(
                conn,
                attachment_id=new.attachment_id,
                owner_id=principal.account_id,
                owner_role=principal.role,
                device_id=principal.device_id,
                storage_key=key,
                storage_state=state,
                upload_length=new.length,
                declared_sha256=new.ciphertext_sha256,
                ttl_s=settings.evidence_upload_ttl_s,
                max_open=settings.evidence_max_open_uploads,
                max_bytes_per_day=settings.evidence_max_bytes_per_day,
            )
            if expires_at is not None:
                await _custody(
                    conn,
                    AuditAction.ATTACHMENT_RECEIVED,
                    "received",
                    new.attachment_id,
                    actor_id=principal.account_id,
                    actor_role=principal.role,
                    detail={"length": new.length},
                )
                return Upload(new.attachment_id, 0, new.length, expires_at, complete=False)
            existing = await queries.own_upload(conn, new.attachment_id, principal.account_id)
            usage = await queries.quota(
                conn,
                principal.account_id,
                upload_length=new.length,
                max_bytes_per_day=settings.evidence_max_bytes_per_day,
            )
    except BaseException:
        await ctx.storage.delete(key, state)
        raise
    await ctx.storage.delete(key, state)
    if existing is not None:
        return _retried(existing, new)
    _check_quota(settings, usage, new.length)
    raise Conflict("This attachment id is already in use")


async def _own_row(
    pool: db.Pool, principal: Principal, attachment_id: UUID
) -> queries.UploadRow | queries.DecoyRow:
    async with acting_as(pool, principal) as conn:
        row: queries.UploadRow | queries.DecoyRow | None = (
            await queries.decoy(conn, principal.account_id, attachment_id)
            if principal.duress
            else await queries.own_upload(conn, attachment_id, principal.account_id)
        )
    if row is None or row.status == "deleted" or (row.status in OPEN and row.expired):
        raise await _not_found(pool, principal, attachment_id, "No such upload")
    return row


async def upload_state(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, attachment_id: UUID
) -> Upload:
    """tus HEAD. An upload whose completion was cut short is finished here first."""
    row = await _own_row(pool, principal, attachment_id)
    if row.status == "finalizing":
        return await _resume_completion(ctx, pool, principal, attachment_id)
    return _upload_of(row)


async def _resume_completion(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, attachment_id: UUID
) -> Upload:
    lease_id = uuid.uuid4()
    async with acting_as(pool, principal) as conn:
        claimed = await queries.claim_finalizing(
            conn,
            attachment_id=attachment_id,
            owner_id=principal.account_id,
            lease_id=lease_id,
            lease_s=ctx.settings.evidence_lease_s,
        )
    if claimed is None:
        raise Conflict("The upload is being completed; ask again shortly")
    return await _complete(ctx, pool, principal, attachment_id, lease_id, claimed, None)


async def append(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    *,
    offset: int,
    chunks: AsyncIterator[bytes],
    content_length: int | None,
    checksum: Checksum | None,
) -> Upload:
    """tus PATCH: stores the body at `offset`; with a checksum, all of it or none of it.

    A body cut short by a dropped connection (no checksum) is kept up to its last byte, so the
    client resumes from there instead of re-sending it (tus 1.0.0 §PATCH).
    """
    async with ctx.patch_slot():
        if principal.duress:
            return await _swallow(
                ctx, pool, principal, attachment_id, offset, chunks, content_length, checksum
            )
        return await _append(
            ctx,
            pool,
            principal,
            attachment_id,
            offset=offset,
            chunks=chunks,
            content_length=content_length,
            checksum=checksum,
        )


def _patch_limit(
    settings: Settings, current: Upload, offset: int, content_length: int | None
) -> int:
    """How many bytes a PATCH at `offset` may bring, after the checks every PATCH answers to."""
    if current.complete:
        raise Conflict("The upload is already complete", headers=_offset_header(current.offset))
    if offset != current.offset:
        raise Conflict(
            "Upload-Offset does not match the upload", headers=_offset_header(current.offset)
        )
    limit = min(current.length - offset, settings.evidence_max_patch_bytes)
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge("The chunk is larger than the upload or the PATCH limit")
    return limit


async def _append(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    *,
    offset: int,
    chunks: AsyncIterator[bytes],
    content_length: int | None,
    checksum: Checksum | None,
) -> Upload:
    settings = ctx.settings
    current = await upload_state(ctx, pool, principal, attachment_id)
    limit = _patch_limit(settings, current, offset, content_length)
    lease_id = uuid.uuid4()
    async with acting_as(pool, principal) as conn:
        claimed = await queries.claim(
            conn,
            attachment_id=attachment_id,
            owner_id=principal.account_id,
            offset=offset,
            lease_id=lease_id,
            lease_s=settings.evidence_lease_s,
        )
    if claimed is None:
        # Moved on, expired, or another PATCH is writing it right now.
        raise Conflict("The upload is busy or has moved on; ask for its offset (HEAD)")
    running = ctx.digests.take(attachment_id, offset)
    chunk_hash = _checksum_hasher(checksum[0]) if checksum is not None else None
    received = 0
    renew_every = settings.evidence_lease_s / 3
    last_renewed = time.monotonic()

    async def metered() -> AsyncIterator[bytes]:
        nonlocal received, last_renewed
        async for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if received > limit:
                raise PayloadTooLarge("The chunk is larger than the upload or the PATCH limit")
            if time.monotonic() - last_renewed > renew_every:
                await _renew(ctx, pool, principal, attachment_id, lease_id)
                last_renewed = time.monotonic()
            yield chunk

    try:
        appended = await ctx.storage.append(
            claimed.storage_key,
            claimed.storage_state,
            offset,
            metered(),
            [digest for digest in (chunk_hash, running) if digest is not None],
        )
        _check_chunk(checksum, chunk_hash, offset)
    except BaseException:
        # The old state stays valid (storage contract): the chunk is simply not recorded.
        async with acting_as(pool, principal) as conn:
            await queries.release(conn, attachment_id, lease_id)
        raise
    new_offset = offset + appended.written
    if new_offset < current.length:
        async with acting_as(pool, principal) as conn:
            expires_at = await queries.advance(
                conn,
                attachment_id=attachment_id,
                lease_id=lease_id,
                old_offset=offset,
                new_offset=new_offset,
                storage_state=appended.state,
                ttl_s=settings.evidence_upload_ttl_s,
            )
        if expires_at is None:
            raise Conflict("The upload was taken over or removed")
        if running is not None:
            ctx.digests.keep(attachment_id, new_offset, running)
        return Upload(attachment_id, new_offset, current.length, expires_at, complete=False)
    # Every byte is in. Recorded before any irreversible storage step (completing an S3
    # multipart upload), so whatever fails next, a retry finds the state it needs to finish.
    async with acting_as(pool, principal) as conn:
        expires_at = await queries.finalizing(
            conn,
            attachment_id=attachment_id,
            lease_id=lease_id,
            old_offset=offset,
            storage_state=appended.state,
            ttl_s=settings.evidence_upload_ttl_s,
            lease_s=settings.evidence_lease_s,
        )
    if expires_at is None:
        raise Conflict("The upload was taken over or removed")
    final = msgspec.structs.replace(claimed, storage_state=appended.state)
    return await _complete(ctx, pool, principal, attachment_id, lease_id, final, running)


async def _renew(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, attachment_id: UUID, lease_id: UUID
) -> None:
    async with acting_as(pool, principal) as conn:
        if not await queries.renew(conn, attachment_id, lease_id, ctx.settings.evidence_lease_s):
            raise Conflict("The upload was taken over or removed")


def _check_chunk(checksum: Checksum | None, chunk_hash: Any, offset: int) -> None:
    """460, the offset unmoved, unless the chunk hashed to its declared Upload-Checksum."""
    if checksum is not None and not hmac.compare_digest(chunk_hash.digest(), checksum[1]):
        raise ChecksumMismatch(headers=_offset_header(offset))


def _checksum_hasher(algorithm: str) -> Any:
    # tus checksum extension: sha1 is required of servers. It guards against corruption in
    # transit only; the evidence's identity is the whole-file SHA-256.
    if algorithm == "sha1":
        return hashlib.sha1(usedforsecurity=False)
    return hashlib.sha256()


async def _swallow(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    offset: int,
    chunks: AsyncIterator[bytes],
    content_length: int | None,
    checksum: Checksum | None,
) -> Upload:
    """A duress session's PATCH: read and drop the body (bounded), answer as if stored."""
    known = await upload_state(ctx, pool, principal, attachment_id)
    limit = _patch_limit(ctx.settings, known, offset, content_length)
    chunk_hash = _checksum_hasher(checksum[0]) if checksum is not None else None
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge("The chunk is larger than the upload or the PATCH limit")
        if chunk_hash is not None:
            chunk_hash.update(chunk)
    _check_chunk(checksum, chunk_hash, offset)
    new_offset = offset + received
    async with acting_as(pool, principal) as conn:
        expires_at = await queries.advance_decoy(
            conn,
            account_id=principal.account_id,
            attachment_id=attachment_id,
            old_offset=offset,
            new_offset=new_offset,
            ttl_s=ctx.settings.evidence_upload_ttl_s,
        )
    if expires_at is None:
        raise Conflict("The upload was taken over or removed")
    complete = new_offset == known.length
    return Upload(
        attachment_id, new_offset, known.length, None if complete else expires_at, complete
    )


async def _create_decoy(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, new: NewUpload
) -> Upload:
    """A duress session's tus creation: nothing is stored, but the same rules answer it (a
    retried creation, the quotas, an id already used)."""
    settings = ctx.settings
    async with acting_as(pool, principal) as conn:
        await queries.lock_quota(conn, principal.account_id)
        existing = await queries.decoy(conn, principal.account_id, new.attachment_id)
        if existing is None:
            _check_quota(
                settings,
                await queries.quota(
                    conn,
                    principal.account_id,
                    upload_length=new.length,
                    max_bytes_per_day=settings.evidence_max_bytes_per_day,
                ),
                new.length,
            )
            expires_at = await queries.insert_decoy(
                conn,
                account_id=principal.account_id,
                attachment_id=new.attachment_id,
                upload_length=new.length,
                declared_sha256=new.ciphertext_sha256,
                ttl_s=settings.evidence_upload_ttl_s,
                keep=DECOYS_PER_ACCOUNT,
            )
            return Upload(new.attachment_id, 0, new.length, expires_at, complete=False)
    return _retried(existing, new)


async def _read_prefix(storage: Storage, key: str, length: int) -> bytes:
    blocks = [
        block async for block in storage.open_range(key, 0, min(length, MAX_HEADER_BYTES) - 1)
    ]
    return b"".join(blocks)


def check_age_prefix(prefix: bytes, length: int, *, max_recipients: int) -> None:
    """SEC-FILE-03 on a stored object: its first bytes must be an accepted age v1 header and
    its length one an age encryptor can produce. Raises MalformedEnvelope.

    The pure check (server/envelope/age_header.py) wants the whole file; its payload rule
    depends only on the payload length modulo a sealed chunk, so the header is checked with a
    stand-in payload of the same length class instead of reading gigabytes."""
    mac = prefix.find(b"\n---")
    end = prefix.find(b"\n", mac + 1) if mac >= 0 else -1
    if end < 0:
        check_age_ciphertext(prefix, max_recipients=max_recipients, max_bytes=len(prefix) or 1)
        raise MalformedEnvelope("header")
    header = prefix[: end + 1]
    payload = length - len(header)
    unit = CHUNK_PLAINTEXT_BYTES + CHUNK_TAG_BYTES
    sealed = payload - PAYLOAD_NONCE_BYTES
    if sealed > unit:
        payload = PAYLOAD_NONCE_BYTES + unit + sealed % unit
    stand_in = header + bytes(payload)
    check_age_ciphertext(stand_in, max_recipients=max_recipients, max_bytes=len(stand_in))


async def _rehash(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    lease_id: UUID,
    claimed: queries.Claimed,
) -> str:
    hasher = hashlib.sha256()
    renew_every = ctx.settings.evidence_lease_s / 3
    last_renewed = time.monotonic()
    async for block in ctx.storage.open_range(claimed.storage_key, 0, claimed.upload_length - 1):
        await asyncio.to_thread(hasher.update, block)
        # Re-reading gigabytes can outlast the lease; a lapsed lease would let a retry finish
        # the same upload concurrently.
        if time.monotonic() - last_renewed > renew_every:
            await _renew(ctx, pool, principal, attachment_id, lease_id)
            last_renewed = time.monotonic()
    return hasher.hexdigest()


async def _complete(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    lease_id: UUID,
    claimed: queries.Claimed,
    running: Any,
) -> Upload:
    """Finishes a 'finalizing' upload whose lease we hold. Every step may run again: finalize
    is idempotent, the checks read the stored object, and scratch objects (S3 tails) go only
    after the database records completion, so a failure anywhere leaves a retry (HEAD or
    PATCH) everything it needs."""
    storage = ctx.storage
    key = claimed.storage_key
    length = claimed.upload_length
    refusal: InvalidInput | None = None
    reason = ""
    digest = ""
    try:
        await storage.finalize(key, claimed.storage_state, length)
        await _renew(ctx, pool, principal, attachment_id, lease_id)
        try:
            check_age_prefix(
                await _read_prefix(storage, key, length),
                length,
                max_recipients=ctx.settings.max_envelope_recipients,
            )
        except MalformedEnvelope as malformed:
            refusal, reason = malformed, "not_age_ciphertext"
        else:
            if running is not None:
                digest = running.hexdigest()
            else:
                digest = await _rehash(ctx, pool, principal, attachment_id, lease_id, claimed)
            if not hmac.compare_digest(digest, claimed.declared_sha256):
                refusal, reason = (
                    InvalidInput(
                        "The uploaded bytes do not match the declared SHA-256; "
                        "the upload was discarded",
                        fields=[
                            FieldProblem(
                                path="Upload-Metadata.ciphertext_sha256", message="mismatch"
                            )
                        ],
                    ),
                    "digest_mismatch",
                )
    except BaseException:
        async with acting_as(pool, principal) as conn:
            await queries.release(conn, attachment_id, lease_id)
        raise
    if refusal is not None:
        # Plaintext, a corrupt or a substituted file can never become evidence; the client
        # starts over with a new upload.
        await _retire(ctx, pool, principal, attachment_id, claimed, reason)
        raise refusal
    async with acting_as(pool, principal) as conn:
        completed_at = await queries.complete(
            conn, attachment_id=attachment_id, lease_id=lease_id, digest=digest
        )
        if completed_at is None:
            raise Conflict("The upload was taken over or removed")
        await _custody(
            conn,
            AuditAction.ATTACHMENT_COMPLETED,
            "completed",
            attachment_id,
            actor_id=principal.account_id,
            actor_role=principal.role,
            detail={"length": length, "ciphertext_sha256": digest},
        )
    try:
        await storage.discard_scratch(key)
    except (StorageError, OSError):
        # Left for the attachment's eventual deletion, which removes them too.
        _log.warning("could not remove an upload's scratch objects")
    return Upload(attachment_id, length, length, None, complete=True)


async def _retire(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    claimed: queries.Claimed,
    reason: str,
) -> None:
    async with acting_as(pool, principal) as conn:
        retired = await queries.retire(conn, attachment_id)
        if retired is not None:
            await _custody(
                conn,
                AuditAction.ATTACHMENT_DELETED,
                "deleted",
                attachment_id,
                actor_id=principal.account_id,
                actor_role=principal.role,
                detail={"reason": reason},
            )
    try:
        await ctx.storage.delete(claimed.storage_key, claimed.storage_state)
    except (StorageError, OSError):
        _log.warning("could not delete a refused upload's object")


async def terminate(
    ctx: EvidenceContext, pool: db.Pool, principal: Principal, attachment_id: UUID
) -> None:
    """tus termination of an unfinished upload; complete evidence is never deleted this way."""
    if principal.duress:
        async with acting_as(pool, principal) as conn:
            decoy = await queries.decoy(conn, principal.account_id, attachment_id)
            decoy_retired = await queries.retire_decoy(conn, principal.account_id, attachment_id)
        if decoy is not None and decoy.status == "complete":
            raise Conflict("A complete attachment is evidence and cannot be terminated")
        if not decoy_retired:
            raise NotFound("No such upload")
        return
    async with acting_as(pool, principal) as conn:
        row = await queries.own_upload(conn, attachment_id, principal.account_id)
        retired = None
        if row is not None and row.status in OPEN:
            retired = await queries.retire(conn, attachment_id)
        if retired is not None:
            await _custody(
                conn,
                AuditAction.ATTACHMENT_DELETED,
                "deleted",
                attachment_id,
                actor_id=principal.account_id,
                actor_role=principal.role,
                detail={"reason": "terminated"},
            )
    if row is not None and row.status == "complete":
        raise Conflict("A complete attachment is evidence and cannot be terminated")
    if retired is None:
        raise await _not_found(pool, principal, attachment_id, "No such upload")
    ctx.digests.take(attachment_id, -1)
    await ctx.storage.delete(retired.storage_key, retired.storage_state)


async def sweep_expired(ctx: EvidenceContext, pool: db.Pool) -> int:
    """Deletes abandoned uploads (tus expiration) with their stored bytes; returns how many.
    Expired duress decoys are retired too (nothing stored, nothing to count)."""
    async with db.transaction(pool, role=SWEEPER_ROLE) as conn:
        await queries.sweep_decoys(conn)
    swept = 0
    while True:
        async with db.transaction(pool, role=SWEEPER_ROLE) as conn:
            rows = await queries.expired(conn, SWEEP_BATCH)
            for row in rows:
                await queries.retire(conn, row.id)
                await _custody(
                    conn,
                    AuditAction.ATTACHMENT_DELETED,
                    "deleted",
                    row.id,
                    actor_id=None,
                    actor_role=SWEEPER_ROLE,
                    detail={"reason": "expired"},
                )
        # Deleted from storage only once the database says so: a failure here leaves an
        # orphaned object of ciphertext, never a row pointing at nothing.
        for row in rows:
            try:
                await ctx.storage.delete(row.storage_key, row.storage_state)
            except (StorageError, OSError):
                _log.warning("could not delete an expired upload's object")
            ctx.digests.take(row.id, -1)
        swept += len(rows)
        if len(rows) < SWEEP_BATCH:
            return swept


def resolve_range(spec: tuple[int | None, int | None] | None, total: int) -> tuple[int, int]:
    """RFC 9110 §14.1.2 single byte range (`a-b`, `a-`, `-n`) against `total` bytes."""
    if spec is None:
        return 0, total - 1
    first, last = spec
    if first is None:
        if last is None or last == 0:
            raise _unsatisfiable(total)
        return max(0, total - last), total - 1
    if first >= total:
        raise _unsatisfiable(total)
    end = total - 1 if last is None else min(last, total - 1)
    if end < first:
        raise _unsatisfiable(total)
    return first, end


def _unsatisfiable(total: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(headers={"Content-Range": f"bytes */{total}"})


async def open_download(
    ctx: EvidenceContext,
    pool: db.Pool,
    principal: Principal,
    attachment_id: UUID,
    spec: tuple[int | None, int | None] | None,
) -> Download:
    async with acting_as(pool, principal) as conn:
        row = await queries.downloadable(conn, attachment_id)
        if row is not None and principal.role != Role.INVESTIGATOR:
            mine = row.owner_id == principal.account_id
            if not mine or (row.report_id is not None and row.report_status != UNTRIAGED):
                row = None
        if row is not None:
            start, end = resolve_range(spec, row.upload_length)
            # Recorded before a byte leaves: a download not in the chain did not happen.
            await _custody(
                conn,
                AuditAction.ATTACHMENT_DOWNLOADED,
                "downloaded",
                attachment_id,
                actor_id=principal.account_id,
                actor_role=principal.role,
                range_start=start,
                range_end=end,
                detail={"range_start": start, "range_end": end},
            )
    if row is None:
        # Audited in a transaction of its own, after the request's read-only one.
        raise await _not_found(pool, principal, attachment_id, "No such attachment")
    return Download(
        attachment_id=attachment_id,
        start=start,
        end=end,
        total=row.upload_length,
        ciphertext_sha256=row.ciphertext_sha256,
        partial=spec is not None,
        chunks=ctx.storage.open_range(row.storage_key, start, end),
    )


async def custody_log(pool: db.Pool, principal: Principal, attachment_id: UUID) -> CustodyLog:
    async with acting_as(pool, principal) as conn:
        status = await queries.visible(conn, attachment_id)
        rows = [] if status is None else await queries.custody(conn, attachment_id)
    if status is None:
        raise await _not_found(pool, principal, attachment_id, "No such attachment")
    return CustodyLog(
        attachment_id=attachment_id,
        status=status,
        events=[msgspec.convert(r, CustodyEvent, from_attributes=True) for r in rows],
    )


async def check_citations(
    conn: Connection,
    *,
    operative_id: UUID,
    report_id: UUID,
    attachments: Sequence[AttachmentDigest],
) -> None:
    """Report intake, before it stores: every cited attachment must be complete, the
    submitting operative's own, uncited (or cited by this same report) and hash to the digest
    the signed report declares. Refusals name the attachment's index; an id that is unknown,
    foreign or unfinished gets the same answer. Intake then ties them to the report atomically
    with its insert (submit_report, 0010), which re-checks all of this."""
    if not attachments:
        return
    ids = [a.attachment_id for a in attachments]
    rows = {row.id: row for row in await queries.cited(conn, ids)}
    problems: list[FieldProblem] = []
    seen: set[UUID] = set()
    for index, cited in enumerate(attachments):
        row = rows.get(cited.attachment_id)
        if cited.attachment_id in seen:
            # One file cited twice is a malformed report, not a race with another report.
            problems.append(
                FieldProblem(
                    path=f"$.attachments[{index}].attachment_id",
                    message="This attachment is already cited earlier in the report",
                )
            )
            continue
        seen.add(cited.attachment_id)
        if (
            row is None
            or row.owner_id != operative_id
            or row.status != "complete"
            or row.ciphertext_sha256 is None
        ):
            problems.append(
                FieldProblem(
                    path=f"$.attachments[{index}].attachment_id",
                    message="No complete attachment of yours has this id",
                )
            )
        elif not hmac.compare_digest(row.ciphertext_sha256, cited.ciphertext_sha256):
            problems.append(
                FieldProblem(
                    path=f"$.attachments[{index}].ciphertext_sha256",
                    message="Does not match the stored attachment",
                )
            )
    if problems:
        raise InvalidInput(fields=problems)
    if any(rows[i].report_id not in (None, report_id) for i in ids):
        raise Conflict("An attachment is already part of another report")


def _offset_header(offset: int) -> dict[str, str]:
    return {"Upload-Offset": str(offset)}
