"""Typed wrappers over sql/queries/evidence.sql."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import msgspec

from server.db import Connection
from server.sql import query, to_struct


class UploadRow(msgspec.Struct, frozen=True):
    id: UUID
    owner_id: UUID
    storage_key: str
    storage_state: str
    upload_length: int
    declared_sha256: str
    upload_offset: int
    ciphertext_sha256: str | None
    status: str
    expires_at: datetime
    expired: bool


class Claimed(msgspec.Struct, frozen=True):
    storage_key: str
    storage_state: str
    upload_length: int
    declared_sha256: str


class StoredObject(msgspec.Struct, frozen=True):
    storage_key: str
    storage_state: str


class ExpiredRow(msgspec.Struct, frozen=True):
    id: UUID
    storage_key: str
    storage_state: str


class DownloadRow(msgspec.Struct, frozen=True):
    id: UUID
    owner_id: UUID
    storage_key: str
    upload_length: int
    ciphertext_sha256: str
    report_id: UUID | None
    report_status: str | None


class CustodyRow(msgspec.Struct, frozen=True):
    event: str
    occurred_at: datetime
    actor_id: UUID | None
    actor_role: str | None
    audit_event_id: int
    range_start: int | None
    range_end: int | None


class Quota(msgspec.Struct, frozen=True):
    open_uploads: int
    declared_today: int
    # Seconds until an open upload expires / until enough declared bytes age out (None: never).
    open_free_s: int | None
    bytes_free_s: int | None


class DecoyRow(msgspec.Struct, frozen=True):
    """What a duress session was told about an upload, shaped as the UploadRow it stands for."""

    id: UUID
    upload_length: int
    declared_sha256: str
    upload_offset: int
    status: str
    expires_at: datetime
    expired: bool


class CitedRow(msgspec.Struct, frozen=True):
    id: UUID
    owner_id: UUID
    status: str
    ciphertext_sha256: str | None
    report_id: UUID | None


async def insert_upload(
    conn: Connection,
    *,
    attachment_id: UUID,
    owner_id: UUID,
    owner_role: str,
    device_id: UUID,
    storage_key: str,
    storage_state: str,
    upload_length: int,
    declared_sha256: str,
    ttl_s: int,
    max_open: int,
    max_bytes_per_day: int,
) -> datetime | None:
    expires_at: datetime | None = await conn.fetchval(
        query("evidence.insert_upload"),
        attachment_id,
        owner_id,
        owner_role,
        device_id,
        storage_key,
        storage_state,
        upload_length,
        declared_sha256,
        float(ttl_s),
        max_open,
        max_bytes_per_day,
    )
    return expires_at


async def lock_quota(conn: Connection, owner_id: UUID) -> None:
    await conn.execute(query("evidence.lock_quota"), owner_id)


async def quota(
    conn: Connection, owner_id: UUID, *, upload_length: int, max_bytes_per_day: int
) -> Quota:
    row = await conn.fetchrow(query("evidence.quota"), owner_id, upload_length, max_bytes_per_day)
    return to_struct(row, Quota)


async def own_upload(conn: Connection, attachment_id: UUID, owner_id: UUID) -> UploadRow | None:
    row = await conn.fetchrow(query("evidence.own_upload"), attachment_id, owner_id)
    return to_struct(row, UploadRow) if row else None


async def claim(
    conn: Connection,
    *,
    attachment_id: UUID,
    owner_id: UUID,
    offset: int,
    lease_id: UUID,
    lease_s: int,
) -> Claimed | None:
    row = await conn.fetchrow(
        query("evidence.claim"), attachment_id, owner_id, offset, lease_id, float(lease_s)
    )
    return to_struct(row, Claimed) if row else None


async def claim_finalizing(
    conn: Connection, *, attachment_id: UUID, owner_id: UUID, lease_id: UUID, lease_s: int
) -> Claimed | None:
    row = await conn.fetchrow(
        query("evidence.claim_finalizing"), attachment_id, owner_id, lease_id, float(lease_s)
    )
    return to_struct(row, Claimed) if row else None


async def renew(conn: Connection, attachment_id: UUID, lease_id: UUID, lease_s: int) -> bool:
    renewed = await conn.fetchval(query("evidence.renew"), attachment_id, lease_id, float(lease_s))
    return renewed is not None


async def release(conn: Connection, attachment_id: UUID, lease_id: UUID) -> None:
    await conn.execute(query("evidence.release"), attachment_id, lease_id)


async def advance(
    conn: Connection,
    *,
    attachment_id: UUID,
    lease_id: UUID,
    old_offset: int,
    new_offset: int,
    storage_state: str,
    ttl_s: int,
) -> datetime | None:
    expires_at: datetime | None = await conn.fetchval(
        query("evidence.advance"),
        attachment_id,
        lease_id,
        old_offset,
        new_offset,
        storage_state,
        float(ttl_s),
    )
    return expires_at


async def finalizing(
    conn: Connection,
    *,
    attachment_id: UUID,
    lease_id: UUID,
    old_offset: int,
    storage_state: str,
    ttl_s: int,
    lease_s: int,
) -> datetime | None:
    expires_at: datetime | None = await conn.fetchval(
        query("evidence.finalizing"),
        attachment_id,
        lease_id,
        old_offset,
        storage_state,
        float(ttl_s),
        float(lease_s),
    )
    return expires_at


async def complete(
    conn: Connection, *, attachment_id: UUID, lease_id: UUID, digest: str
) -> datetime | None:
    completed_at: datetime | None = await conn.fetchval(
        query("evidence.complete"), attachment_id, lease_id, digest
    )
    return completed_at


async def retire(conn: Connection, attachment_id: UUID) -> StoredObject | None:
    row = await conn.fetchrow(query("evidence.retire"), attachment_id)
    return to_struct(row, StoredObject) if row else None


async def expired(conn: Connection, limit: int) -> list[ExpiredRow]:
    rows = await conn.fetch(query("evidence.expired"), limit)
    return [to_struct(r, ExpiredRow) for r in rows]


async def downloadable(conn: Connection, attachment_id: UUID) -> DownloadRow | None:
    row = await conn.fetchrow(query("evidence.downloadable"), attachment_id)
    return to_struct(row, DownloadRow) if row else None


async def visible(conn: Connection, attachment_id: UUID) -> str | None:
    status: str | None = await conn.fetchval(query("evidence.visible"), attachment_id)
    return status


async def record_custody(
    conn: Connection,
    *,
    attachment_id: UUID,
    audit_event_id: int,
    event: str,
    actor_id: UUID | None,
    actor_role: str | None,
    range_start: int | None = None,
    range_end: int | None = None,
) -> None:
    await conn.execute(
        query("evidence.record_custody"),
        attachment_id,
        audit_event_id,
        event,
        actor_id,
        actor_role,
        range_start,
        range_end,
    )


async def custody(conn: Connection, attachment_id: UUID) -> list[CustodyRow]:
    rows = await conn.fetch(query("evidence.custody"), attachment_id)
    return [to_struct(r, CustodyRow) for r in rows]


async def cited(conn: Connection, attachment_ids: Sequence[UUID]) -> list[CitedRow]:
    rows = await conn.fetch(query("evidence.cited"), list(attachment_ids))
    return [to_struct(r, CitedRow) for r in rows]


async def decoy(conn: Connection, account_id: UUID, attachment_id: UUID) -> DecoyRow | None:
    row = await conn.fetchrow(query("evidence.decoy"), account_id, attachment_id)
    return to_struct(row, DecoyRow) if row else None


async def insert_decoy(
    conn: Connection,
    *,
    account_id: UUID,
    attachment_id: UUID,
    upload_length: int,
    declared_sha256: str,
    ttl_s: int,
    keep: int,
) -> datetime:
    expires_at: datetime = await conn.fetchval(
        query("evidence.insert_decoy"),
        account_id,
        attachment_id,
        upload_length,
        declared_sha256,
        float(ttl_s),
    )
    await conn.execute(query("evidence.trim_decoys"), account_id, keep)
    return expires_at


async def advance_decoy(
    conn: Connection,
    *,
    account_id: UUID,
    attachment_id: UUID,
    old_offset: int,
    new_offset: int,
    ttl_s: int,
) -> datetime | None:
    expires_at: datetime | None = await conn.fetchval(
        query("evidence.advance_decoy"),
        account_id,
        attachment_id,
        old_offset,
        new_offset,
        float(ttl_s),
    )
    return expires_at


async def retire_decoy(conn: Connection, account_id: UUID, attachment_id: UUID) -> bool:
    retired = await conn.fetchval(query("evidence.retire_decoy"), account_id, attachment_id)
    return retired is not None


async def sweep_decoys(conn: Connection) -> None:
    await conn.execute(query("evidence.sweep_decoys"))
