"""Typed wrappers over sql/queries/identity.sql; the only callers of those statements."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import msgspec

from server.db import Connection
from server.identity.schemas import AccountAlarms
from server.sql import query, to_struct


class Created(msgspec.Struct, frozen=True):
    id: UUID
    expires_at: datetime


class PendingInvite(msgspec.Struct, frozen=True):
    id: UUID
    role: str
    handle: str
    account_id: UUID | None


class EnrollingAccount(msgspec.Struct, frozen=True):
    id: UUID
    role: str
    handle: str
    totp_seed_sealed: bytes | None


class LoginAccount(msgspec.Struct, frozen=True):
    id: UUID
    role: str
    status: str
    password_hash: str | None
    duress_hash: str | None
    totp_seed_sealed: bytes | None


class LiveSession(msgspec.Struct, frozen=True):
    session_id: UUID
    account_id: UUID
    device_id: UUID
    duress: bool
    role: str
    handle: str
    proof_is_fresh: bool


class ThrottleState(msgspec.Struct, frozen=True):
    consecutive_failures: int
    locked: bool
    blocked: bool
    retry_after_s: int


class SourceCount(msgspec.Struct, frozen=True):
    attempts: int
    retry_after_s: int


class ResetAccount(msgspec.Struct, frozen=True):
    handle: str
    role: str


async def count_active_investigators(conn: Connection) -> int:
    return int(await conn.fetchval(query("identity.count_active_investigators")))


async def handle_taken(conn: Connection, handle: str) -> bool:
    return bool(await conn.fetchval(query("identity.handle_taken"), handle))


async def create_invite(
    conn: Connection, code_hash: bytes, role: str, handle: str, created_by: UUID | None, ttl_s: int
) -> Created:
    row = await conn.fetchrow(
        query("identity.create_invite"), code_hash, role, handle, created_by, ttl_s
    )
    return to_struct(row, Created)


async def create_reset_invite(
    conn: Connection,
    code_hash: bytes,
    role: str,
    handle: str,
    created_by: UUID,
    ttl_s: int,
    account_id: UUID,
) -> Created:
    row = await conn.fetchrow(
        query("identity.create_reset_invite"),
        code_hash,
        role,
        handle,
        created_by,
        ttl_s,
        account_id,
    )
    return to_struct(row, Created)


async def take_invite(conn: Connection, code_hash: bytes) -> PendingInvite | None:
    row = await conn.fetchrow(query("identity.take_invite"), code_hash)
    return to_struct(row, PendingInvite) if row else None


async def create_account(
    conn: Connection,
    account_id: UUID,
    handle: str,
    role: str,
    password_hash: str,
    totp_seed_sealed: bytes,
    age_recipient: str,
) -> None:
    await conn.execute(
        query("identity.create_account"),
        account_id,
        handle,
        role,
        password_hash,
        totp_seed_sealed,
        age_recipient,
    )


async def reenrol_account(
    conn: Connection,
    account_id: UUID,
    password_hash: str,
    totp_seed_sealed: bytes,
    age_recipient: str,
) -> bool:
    return (
        await conn.fetchval(
            query("identity.reenrol_account"),
            account_id,
            password_hash,
            totp_seed_sealed,
            age_recipient,
        )
        is not None
    )


async def create_device(
    conn: Connection, account_id: UUID, public_jwk: dict[str, str], thumbprint: str
) -> UUID | None:
    """The new device's id, or None when this key is already registered and not revoked."""
    try:
        async with conn.transaction():
            device_id: UUID = await conn.fetchval(
                query("identity.create_device"),
                account_id,
                msgspec.json.encode(public_jwk).decode(),
                thumbprint,
            )
    except asyncpg.UniqueViolationError:
        return None
    return device_id


async def redeem_invite(conn: Connection, invite_id: UUID, account_id: UUID) -> None:
    await conn.execute(query("identity.redeem_invite"), invite_id, account_id)


async def enrolling_account(
    conn: Connection, account_id: UUID, thumbprint: str
) -> EnrollingAccount | None:
    row = await conn.fetchrow(query("identity.enrolling_account"), account_id, thumbprint)
    return to_struct(row, EnrollingAccount) if row else None


async def activate_account(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.activate_account"), account_id)


async def login_account(conn: Connection, handle: str) -> LoginAccount | None:
    row = await conn.fetchrow(query("identity.login_account"), handle)
    return to_struct(row, LoginAccount) if row else None


async def login_device(conn: Connection, account_id: UUID, thumbprint: str) -> UUID | None:
    device_id: UUID | None = await conn.fetchval(
        query("identity.login_device"), account_id, thumbprint
    )
    return device_id


async def consume_totp_step(conn: Connection, account_id: UUID, step: int) -> bool:
    return await conn.fetchval(query("identity.consume_totp_step"), account_id, step) is not None


async def set_password_hash(conn: Connection, account_id: UUID, password_hash: str) -> None:
    await conn.execute(query("identity.set_password_hash"), account_id, password_hash)


async def create_session(
    conn: Connection,
    token_hash: bytes,
    account_id: UUID,
    device_id: UUID,
    duress: bool,
    idle_s: int,
    lifetime_s: int,
) -> Created:
    row = await conn.fetchrow(
        query("identity.create_session"),
        token_hash,
        account_id,
        device_id,
        duress,
        idle_s,
        lifetime_s,
    )
    return to_struct(row, Created)


async def end_real_sessions(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.end_real_sessions"), account_id)


async def end_all_sessions(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.end_all_sessions"), account_id)


async def raise_duress_alarm(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.raise_duress_alarm"), account_id)


async def authenticate(
    conn: Connection, token_hash: bytes, thumbprint: str, jti_hash: bytes, replay_ttl_s: int
) -> LiveSession | None:
    row = await conn.fetchrow(
        query("identity.authenticate"), token_hash, thumbprint, jti_hash, replay_ttl_s
    )
    return to_struct(row, LiveSession) if row else None


async def record_dpop_jti(conn: Connection, jti_hash: bytes, ttl_s: int) -> bool:
    return bool(await conn.fetchval(query("identity.record_dpop_jti"), jti_hash, ttl_s))


async def end_session(conn: Connection, session_id: UUID) -> None:
    await conn.execute(query("identity.end_session"), session_id)


async def account_view(conn: Connection, account_id: UUID) -> AccountAlarms | None:
    row = await conn.fetchrow(query("identity.account_view"), account_id)
    return to_struct(row, AccountAlarms) if row else None


async def list_accounts(conn: Connection, limit: int) -> list[AccountAlarms]:
    return [
        to_struct(r, AccountAlarms)
        for r in await conn.fetch(query("identity.list_accounts"), limit)
    ]


async def lock_login_throttle(conn: Connection, subject_key: bytes) -> ThrottleState:
    await conn.execute(query("identity.ensure_login_throttle"), subject_key)
    row = await conn.fetchrow(query("identity.lock_login_throttle"), subject_key)
    return to_struct(row, ThrottleState)


async def count_login_attempt(
    conn: Connection,
    subject_key: bytes,
    backoff_after: int,
    backoff_base_s: float,
    backoff_max_s: float,
) -> None:
    await conn.execute(
        query("identity.count_login_attempt"),
        subject_key,
        backoff_after,
        backoff_base_s,
        backoff_max_s,
    )


async def lock_login_throttle_hard(conn: Connection, subject_key: bytes) -> None:
    await conn.execute(query("identity.lock_login_throttle_hard"), subject_key)


async def clear_login_failures(conn: Connection, subject_key: bytes) -> None:
    await conn.execute(query("identity.clear_login_failures"), subject_key)


async def lock_account(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.lock_account"), account_id)


async def unlock(conn: Connection, account_id: UUID, subject_key: bytes) -> bool:
    return await conn.fetchval(query("identity.unlock"), account_id, subject_key) is not None


async def count_source_attempt(conn: Connection, source_key: bytes, window_s: int) -> SourceCount:
    row = await conn.fetchrow(query("identity.count_source_attempt"), source_key, window_s)
    return to_struct(row, SourceCount)


async def set_status(conn: Connection, account_id: UUID, status: str) -> str | None:
    row = await conn.fetchrow(query("identity.set_status"), account_id, status)
    return str(row["handle"]) if row else None


async def reset_factors(conn: Connection, account_id: UUID) -> ResetAccount | None:
    row = await conn.fetchrow(query("identity.reset_factors"), account_id)
    return to_struct(row, ResetAccount) if row else None


async def revoke_device(conn: Connection, device_id: UUID) -> UUID | None:
    account_id: UUID | None = await conn.fetchval(query("identity.revoke_device"), device_id)
    return account_id


async def revoke_account_devices(conn: Connection, account_id: UUID) -> None:
    await conn.execute(query("identity.revoke_account_devices"), account_id)


async def account_role(conn: Connection, account_id: UUID) -> str | None:
    role: str | None = await conn.fetchval(query("identity.account_role"), account_id)
    return role


async def end_device_sessions(conn: Connection, device_id: UUID) -> None:
    await conn.execute(query("identity.end_device_sessions"), device_id)


async def set_duress_hash(conn: Connection, account_id: UUID, duress_hash: str) -> None:
    await conn.execute(query("identity.set_duress_hash"), account_id, duress_hash)


async def account_handle(conn: Connection, account_id: UUID) -> str | None:
    handle: str | None = await conn.fetchval(query("identity.account_handle"), account_id)
    return handle


async def sweep_expired(conn: Connection, source_window_s: int) -> None:
    await conn.execute(query("identity.sweep_dpop_replay"))
    await conn.execute(query("identity.sweep_source_throttle"), source_window_s)
