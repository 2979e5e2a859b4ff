"""Identity rules: invites, enrolment, login, sessions, throttling, duress, account management.

Every decision is made here, on the server, and written to the audit log in the same
transaction. Authentication failures share one answer whatever their cause (unknown handle,
wrong password, wrong TOTP, unknown device, locked account): an adversary who knows an
operative's handle must learn nothing from trying it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from enum import Enum
from typing import Final

import msgspec

from server import db
from server.audit.actions import AuditAction
from server.audit.service import record
from server.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unauthenticated
from server.identity import passwords, queries, totp
from server.identity.dpop import DPOP_CHALLENGE, DeviceKey, DPoPClaims, parse_device_jwk
from server.identity.permissions import Role
from server.identity.principal import Principal, acting_as, as_authenticator
from server.identity.schemas import (
    AccountAlarms,
    AccountList,
    AccountView,
    DuressPasswordRequest,
    EnrolmentConfirmation,
    EnrolmentRequest,
    EnrolmentStarted,
    InviteCreated,
    InvitePayload,
    LoginRequest,
    ResetIssued,
    SessionCreated,
)
from server.keyring import Keyring
from server.settings import Settings

INVITE_CODE_BYTES: Final = 20  # 160 bits, above the 112 that 63B-4 §4.1.2.2 asks of a code
TOKEN_BYTES: Final = 32  # 256-bit session tokens (SEC-SESS-01)
LOGIN_FAILED: Final = "Login failed"
# Who may invite whom. An admin may not bring in an investigator on their own: investigators
# hold the content keys, so only an investigator may add another (DESIGN §1, §2).
INVITABLE: Final[dict[Role, frozenset[Role]]] = {
    Role.INVESTIGATOR: frozenset({Role.OPERATIVE, Role.INVESTIGATOR, Role.OFFICER, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.OPERATIVE, Role.OFFICER, Role.ADMIN}),
}


class IdentityContext:
    """What the identity rules need beyond a connection: settings, keys, the password hasher."""

    def __init__(
        self, settings: Settings, keyring: Keyring, totp_clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.keyring = keyring
        # The clock TOTP steps are read from; replaceable so tests can move to the next step
        # (a step is accepted once) without waiting 30 seconds.
        self.totp_clock = totp_clock
        self.hasher = passwords.PasswordHasher(
            pepper=keyring.password_pepper,
            max_concurrency=settings.password_hash_concurrency,
            max_waiting=settings.password_hash_max_waiting,
        )

    @property
    def replay_ttl_s(self) -> int:
        # A jti must be remembered for as long as its proof could still be accepted.
        return self.settings.dpop_max_age_s + self.settings.dpop_max_future_s + 1


def _sha256(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


def _login_failed() -> Unauthenticated:
    return Unauthenticated(LOGIN_FAILED)


def _invite_payload(ctx: IdentityContext, server_url: str, code: str) -> InvitePayload:
    return InvitePayload(
        server_url=ctx.settings.public_url or server_url,
        code=code,
        root_public_key=ctx.settings.root_public_key,
        root_key_fingerprint=root_key_fingerprint(ctx.settings.root_public_key),
    )


def root_key_fingerprint(root_public_key: str | None) -> str | None:
    if root_public_key is None:
        return None
    raw = base64.b64decode(root_public_key, validate=True)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def new_invite_code() -> tuple[str, bytes]:
    code = base64.b32encode(secrets.token_bytes(INVITE_CODE_BYTES)).decode()
    return code, _sha256(code)


# --- invites ------------------------------------------------------------------------------------


async def create_invite(
    ctx: IdentityContext,
    conn: db.Connection,
    inviter: Principal | None,
    role: Role,
    handle: str,
    server_url: str,
) -> InviteCreated:
    """An invite for a new account; `inviter` None is the bootstrap of an empty installation."""
    if inviter is None:
        if role is not Role.INVESTIGATOR or await queries.count_active_investigators(conn):
            raise Forbidden("The bootstrap invite is only for the first investigator")
    elif role not in INVITABLE.get(inviter.role, frozenset()):
        raise Forbidden(f"A {inviter.role} may not invite a {role}")
    if await queries.handle_taken(conn, handle):
        raise Conflict("That handle is taken")
    code, code_hash = new_invite_code()
    inviter_id = inviter.account_id if inviter else None
    created = await queries.create_invite(
        conn, code_hash, role, handle, inviter_id, ctx.settings.invite_ttl_s
    )
    await record(
        conn,
        AuditAction.INVITE_CREATED,
        actor_id=inviter_id,
        actor_role=inviter.role if inviter else None,
        subject_type="invite",
        subject_id=str(created.id),
        detail={"role": role.value},
    )
    return InviteCreated(
        invite_id=created.id,
        role=role,
        handle=handle,
        expires_at=created.expires_at,
        payload=_invite_payload(ctx, server_url, code),
    )


async def invite(
    ctx: IdentityContext,
    pool: db.Pool,
    inviter: Principal,
    role: Role,
    handle: str,
    server_url: str,
) -> InviteCreated:
    async with acting_as(pool, inviter) as conn:
        return await create_invite(ctx, conn, inviter, role, handle, server_url)


async def bootstrap_invite(ctx: IdentityContext, pool: db.Pool, handle: str) -> InviteCreated:
    """The first investigator's invite, for `tipline admin create-first-investigator`."""
    server_url = ctx.settings.public_url or f"http://{ctx.settings.host}:{ctx.settings.port}"
    async with as_authenticator(pool) as conn:
        return await create_invite(ctx, conn, None, Role.INVESTIGATOR, handle, server_url)


# --- proofs and throttles ---------------------------------------------------------------------


async def spend_proof(ctx: IdentityContext, conn: db.Connection, claims: DPoPClaims) -> None:
    """A DPoP proof is good once (RFC 9449 §11.1): its jti is remembered in PostgreSQL."""
    if not await queries.record_dpop_jti(conn, _sha256(claims.jti), ctx.replay_ttl_s):
        raise Unauthenticated("Invalid DPoP proof")


async def count_source_attempt(ctx: IdentityContext, pool: db.Pool, address: str) -> None:
    """Per-source limit on login and enrolment, shared by every replica through PostgreSQL.

    Checked before any password hashing: a flood from one address must not buy argon2 time.
    """
    async with as_authenticator(pool) as conn:
        count = await queries.count_source_attempt(
            conn, ctx.keyring.source_key(address), ctx.settings.source_window_s
        )
    if count.attempts > ctx.settings.source_attempts_per_window:
        raise TooManyRequests(retry_after_s=count.retry_after_s)


# --- enrolment ----------------------------------------------------------------------------------


def _device_key_for(request: EnrolmentRequest, claims: DPoPClaims) -> DeviceKey:
    device = parse_device_jwk(request.device_key)
    # The enrolment proof must be signed by the key being registered: proof of possession.
    if device.thumbprint != claims.thumbprint:
        raise Unauthenticated("The DPoP proof is not signed by the device key being enrolled")
    return device


async def enrol(
    ctx: IdentityContext, pool: db.Pool, request: EnrolmentRequest, claims: DPoPClaims
) -> EnrolmentStarted:
    device = _device_key_for(request, claims)
    async with as_authenticator(pool) as conn:
        await spend_proof(ctx, conn, claims)
        invite = await queries.take_invite(conn, _sha256(request.invite_code))
        if invite is None:
            raise Unauthenticated("The invite code is not valid")
        await asyncio.to_thread(
            passwords.check_policy,
            request.password,
            handle=invite.handle,
            context_words=[ctx.settings.organisation_name, "tipline"],
        )
        password_hash = await ctx.hasher.hash(request.password)
        account_id = invite.account_id or uuid.uuid4()
        seed = totp.new_seed()
        sealed = totp.seal_seed(ctx.keyring.totp_seal_key, account_id, seed)
        if invite.account_id is None:
            await queries.create_account(
                conn,
                account_id,
                invite.handle,
                invite.role,
                password_hash,
                sealed,
                request.age_recipient,
            )
        elif not await queries.reenrol_account(
            conn, account_id, password_hash, sealed, request.age_recipient
        ):
            raise Unauthenticated("The invite code is not valid")
        if await queries.create_device(conn, account_id, device.jwk, device.thumbprint) is None:
            raise Conflict("This device key is already registered")
        await queries.redeem_invite(conn, invite.id, account_id)
        await record(
            conn,
            AuditAction.INVITE_REDEEMED,
            actor_id=account_id,
            actor_role=invite.role,
            subject_type="invite",
            subject_id=str(invite.id),
        )
        await record(
            conn,
            AuditAction.ENROLMENT_STARTED,
            actor_id=account_id,
            actor_role=invite.role,
            subject_type="account",
            subject_id=str(account_id),
            detail={"reenrolment": invite.account_id is not None},
        )
    return EnrolmentStarted(
        account_id=account_id,
        handle=invite.handle,
        role=Role(invite.role),
        otpauth_uri=totp.provisioning_uri(
            seed, account_name=invite.handle, issuer=ctx.settings.organisation_name
        ),
    )


async def confirm_enrolment(
    ctx: IdentityContext, pool: db.Pool, request: EnrolmentConfirmation, claims: DPoPClaims
) -> AccountView:
    async with as_authenticator(pool) as conn:
        await spend_proof(ctx, conn, claims)
        account = await queries.enrolling_account(conn, request.account_id, claims.thumbprint)
        if account is None or account.totp_seed_sealed is None:
            raise Unauthenticated("Enrolment confirmation failed")
        seed = totp.open_seed(ctx.keyring.totp_seal_key, account.id, account.totp_seed_sealed)
        step = totp.matching_step(seed, request.totp_code, now=ctx.totp_clock())
        if step is None or not await queries.consume_totp_step(conn, account.id, step):
            raise Unauthenticated("Enrolment confirmation failed")
        await queries.activate_account(conn, account.id)
        await record(
            conn,
            AuditAction.ENROLMENT_CONFIRMED,
            actor_id=account.id,
            actor_role=account.role,
            subject_type="account",
            subject_id=str(account.id),
        )
        view = await queries.account_view(conn, account.id)
    assert view is not None
    return _view(view)


# --- login --------------------------------------------------------------------------------------


class _Verdict(msgspec.Struct, frozen=True):
    account: queries.LoginAccount | None
    password_ok: bool
    duress_ok: bool


async def _check_passwords(
    ctx: IdentityContext, account: queries.LoginAccount | None, password: str
) -> _Verdict:
    # Exactly two argon2 verifications on every path: the password, then the duress password
    # (or a dummy of equal cost). A coerced login, a normal one, a wrong password and an
    # unknown handle all take the same time (SEC-AUTH-09, DESIGN §5 duress).
    usable = account is not None and account.status == "active"
    if usable and account is not None and account.password_hash:
        password_ok = await ctx.hasher.verify(account.password_hash, password)
    else:
        password_ok = await ctx.hasher.dummy_verify(password)
    if usable and account is not None and account.duress_hash:
        duress_ok = await ctx.hasher.verify(account.duress_hash, password)
    else:
        duress_ok = await ctx.hasher.dummy_verify(password)
    return _Verdict(
        account=account if usable else None, password_ok=password_ok, duress_ok=duress_ok
    )


class Gate(Enum):
    OPEN = "open"
    BLOCKED = "blocked"
    LOCKED = "locked"


async def _pass_gate(
    ctx: IdentityContext, conn: db.Connection, subject_key: bytes, account_id: uuid.UUID | None
) -> tuple[Gate, int]:
    """Counts this attempt before any password is checked, under the handle's row lock.

    Counting first means a burst of parallel guesses cannot all slip past the back-off; a
    success clears the count. Keyed by handle, so a handle that does not exist is throttled and
    locked exactly like one that does.
    """
    settings = ctx.settings
    state = await queries.lock_login_throttle(conn, subject_key)
    if state.locked or state.consecutive_failures >= settings.login_hard_lock_after:
        if not state.locked:
            await queries.lock_login_throttle_hard(conn, subject_key)
            if account_id is not None:
                await queries.lock_account(conn, account_id)
            # Investigators see this: someone who knows a handle may be locking it out.
            await record(
                conn,
                AuditAction.ACCOUNT_LOCKED,
                actor_id=None,
                actor_role=None,
                subject_type="account" if account_id else None,
                subject_id=str(account_id) if account_id else None,
            )
        return Gate.LOCKED, 0
    if state.blocked:
        return Gate.BLOCKED, state.retry_after_s
    await queries.count_login_attempt(
        conn,
        subject_key,
        settings.login_backoff_after,
        settings.login_backoff_base_s,
        settings.login_backoff_max_s,
    )
    return Gate.OPEN, 0


async def record_failure(
    pool: db.Pool,
    action: AuditAction,
    *,
    reason: str,
    principal: Principal | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
) -> None:
    """Audits a refused request in a transaction of its own, so the refusal cannot undo it."""
    transaction = acting_as(pool, principal) if principal else as_authenticator(pool)
    async with transaction as conn:
        await record(
            conn,
            action,
            actor_id=principal.account_id if principal else None,
            actor_role=principal.role if principal else None,
            subject_type=subject_type,
            subject_id=subject_id,
            detail={"reason": reason},
        )


async def login(
    ctx: IdentityContext, pool: db.Pool, request: LoginRequest, claims: DPoPClaims
) -> SessionCreated:
    subject_key = ctx.keyring.handle_key(request.handle)
    try:
        async with as_authenticator(pool) as conn:
            await spend_proof(ctx, conn, claims)
    except Unauthenticated:
        await record_failure(pool, AuditAction.LOGIN_FAILED, reason="dpop-replay")
        raise
    async with as_authenticator(pool) as conn:
        account = await queries.login_account(conn, request.handle)
        gate, retry_after_s = await _pass_gate(
            ctx, conn, subject_key, account.id if account else None
        )
        if gate is not Gate.OPEN:
            await record(
                conn,
                AuditAction.LOGIN_THROTTLED if gate is Gate.BLOCKED else AuditAction.LOGIN_FAILED,
                actor_id=None,
                actor_role=None,
                subject_type="account" if account else None,
                subject_id=str(account.id) if account else None,
                detail={"reason": gate.value},
            )
    if gate is Gate.BLOCKED:
        raise TooManyRequests(retry_after_s=retry_after_s)
    if gate is Gate.LOCKED:
        raise _login_failed()  # the right password too, with the usual answer

    verdict = await _check_passwords(ctx, account, request.password)
    async with as_authenticator(pool) as conn:
        session = await _finish_login(ctx, conn, request, claims, verdict, subject_key)
    if session is None:
        raise _login_failed()
    return session


async def _finish_login(
    ctx: IdentityContext,
    conn: db.Connection,
    request: LoginRequest,
    claims: DPoPClaims,
    verdict: _Verdict,
    subject_key: bytes,
) -> SessionCreated | None:
    account = verdict.account
    reason = "unknown-or-inactive"
    device_id = None
    if account is not None:
        reason = "password"
        if verdict.password_ok or verdict.duress_ok:
            reason = "device"
            device_id = await queries.login_device(conn, account.id, claims.thumbprint)
        if device_id is not None and account.totp_seed_sealed is not None:
            reason = "totp"
            seed = totp.open_seed(ctx.keyring.totp_seal_key, account.id, account.totp_seed_sealed)
            step = totp.matching_step(seed, request.totp_code, now=ctx.totp_clock())
            if step is not None:
                reason = "totp-replay"
                if await queries.consume_totp_step(conn, account.id, step):
                    reason = ""
    if reason or account is None or device_id is None:
        await _record_failure(conn, account, reason)
        return None

    duress = verdict.duress_ok and not verdict.password_ok
    await queries.clear_login_failures(conn, subject_key)
    role = Role(account.role)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    idle_s = ctx.settings.session_idle_s(role)
    created = await queries.create_session(
        conn,
        _sha256(token),
        account.id,
        device_id,
        duress,
        idle_s,
        ctx.settings.session_lifetime_s(role),
    )
    if duress:
        # The coercer sees a normal session; the real ones end and investigators are alerted.
        await queries.end_real_sessions(conn, account.id)
        await queries.raise_duress_alarm(conn, account.id)
        await record(
            conn,
            AuditAction.DURESS_TRIGGERED,
            actor_id=account.id,
            actor_role=role,
            subject_type="account",
            subject_id=str(account.id),
        )
    else:
        await record(
            conn,
            AuditAction.LOGIN_SUCCEEDED,
            actor_id=account.id,
            actor_role=role,
            subject_type="session",
            subject_id=str(created.id),
        )
        if account.password_hash and ctx.hasher.needs_rehash(account.password_hash):
            await queries.set_password_hash(
                conn, account.id, await ctx.hasher.hash(request.password)
            )
    view = await queries.account_view(conn, account.id)
    assert view is not None
    return SessionCreated(
        access_token=token,
        token_type="DPoP",  # noqa: S106  (the RFC 9449 token type, not a secret)
        device_id=device_id,
        expires_at=created.expires_at,
        idle_timeout_s=idle_s,
        account=_view(view),
    )


async def _record_failure(
    conn: db.Connection, account: queries.LoginAccount | None, reason: str
) -> None:
    # The attempt was already counted at the gate; this only says why it failed.
    await record(
        conn,
        AuditAction.LOGIN_FAILED,
        actor_id=None,
        actor_role=None,
        subject_type="account" if account else None,
        subject_id=str(account.id) if account else None,
        detail={"reason": reason},
    )


# --- sessions -----------------------------------------------------------------------------------


async def authenticate(
    ctx: IdentityContext, pool: db.Pool, token: str, claims: DPoPClaims
) -> Principal:
    """The principal behind a token whose DPoP proof (already verified) is fresh."""
    async with db.self_contained(pool) as conn:
        live = await queries.authenticate(
            conn, _sha256(token), claims.thumbprint, _sha256(claims.jti), ctx.replay_ttl_s
        )
    if live is None or not live.proof_is_fresh:
        raise Unauthenticated("The session is not valid", headers=DPOP_CHALLENGE)
    return Principal(
        account_id=live.account_id,
        role=Role(live.role),
        handle=live.handle,
        session_id=live.session_id,
        device_id=live.device_id,
        duress=live.duress,
        device_key=claims.jwk,
    )


async def logout(pool: db.Pool, principal: Principal) -> None:
    async with acting_as(pool, principal) as conn:
        await queries.end_session(conn, principal.session_id)
        await record(
            conn,
            AuditAction.SESSION_ENDED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="session",
            subject_id=str(principal.session_id),
        )


def _view(row: AccountView | AccountAlarms) -> AccountView:
    return AccountView(
        id=row.id, handle=row.handle, role=row.role, status=row.status, created_at=row.created_at
    )


async def me(pool: db.Pool, principal: Principal) -> AccountView:
    async with acting_as(pool, principal) as conn:
        row = await queries.account_view(conn, principal.account_id)
    if row is None:
        raise NotFound("No such account")
    return _view(row)


async def set_duress_password(
    ctx: IdentityContext, pool: db.Pool, principal: Principal, request: DuressPasswordRequest
) -> None:
    """Needs the current password, behind the login throttle: a seized phone with a live session
    must not become a way to guess the password. A duress session gets exactly the answers a
    normal one would (its "current password" is the duress password) and changes nothing."""
    if passwords.normalize(request.duress_password) == passwords.normalize(request.password):
        raise Conflict("The duress password must differ from the password")
    subject_key = ctx.keyring.handle_key(principal.handle)
    async with as_authenticator(pool) as conn:
        account = await queries.login_account(conn, principal.handle)
        gate, retry_after_s = await _pass_gate(
            ctx, conn, subject_key, account.id if account else None
        )
    if gate is Gate.BLOCKED:
        raise TooManyRequests(retry_after_s=retry_after_s)
    stored = None
    if account is not None and gate is Gate.OPEN:
        stored = account.duress_hash if principal.duress else account.password_hash
    if stored:
        verified = await ctx.hasher.verify(stored, request.password)
    else:
        verified = await ctx.hasher.dummy_verify(request.password)
    if not verified:
        await record_failure(pool, AuditAction.LOGIN_FAILED, reason="reauth", principal=principal)
        raise Unauthenticated("The current password is wrong")
    await asyncio.to_thread(
        passwords.check_policy,
        request.duress_password,
        handle=principal.handle,
        context_words=[ctx.settings.organisation_name, "tipline"],
    )
    duress_hash = await ctx.hasher.hash(request.duress_password)
    async with as_authenticator(pool) as conn:
        await queries.clear_login_failures(conn, subject_key)
    if principal.duress:
        return
    async with acting_as(pool, principal) as conn:
        await queries.set_duress_hash(conn, principal.account_id, duress_hash)
        await record(
            conn,
            AuditAction.FACTOR_CHANGED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="account",
            subject_id=str(principal.account_id),
            detail={"factor": "duress-password"},
        )


# --- administration -----------------------------------------------------------------------------


async def list_accounts(pool: db.Pool, principal: Principal, limit: int) -> AccountList:
    async with acting_as(pool, principal) as conn:
        return AccountList(accounts=await queries.list_accounts(conn, limit))


async def _ensure_admin_may_act_on(
    conn: db.Connection, principal: Principal, account_id: uuid.UUID
) -> None:
    # An admin manages accounts but must not be able to take over, lock out or suspend the
    # investigators who hold the content keys (DESIGN §2): the same rule that stops an admin
    # inviting an investigator. The policies in 0003_identity.sql enforce it again.
    if account_id == principal.account_id:
        raise Forbidden("An admin cannot act on their own account")
    role = await queries.account_role(conn, account_id)
    if role is None:
        raise NotFound("No such account")
    if role == Role.INVESTIGATOR:
        raise Forbidden("An admin cannot act on an investigator's account")


async def set_account_status(
    pool: db.Pool, principal: Principal, account_id: uuid.UUID, *, suspended: bool
) -> None:
    async with acting_as(pool, principal) as conn:
        await _ensure_admin_may_act_on(conn, principal, account_id)
        status = "suspended" if suspended else "active"
        if await queries.set_status(conn, account_id, status) is None:
            raise NotFound("No such account")
        if suspended:
            await queries.end_all_sessions(conn, account_id)
        await record(
            conn,
            AuditAction.ACCOUNT_SUSPENDED if suspended else AuditAction.ACCOUNT_REACTIVATED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="account",
            subject_id=str(account_id),
        )


async def reset_factors(
    ctx: IdentityContext,
    pool: db.Pool,
    principal: Principal,
    account_id: uuid.UUID,
    server_url: str,
) -> ResetIssued:
    """Wipes password, duress password and TOTP; the holder re-enrols with a one-time code.

    The admin never sets or sees a password (SEC-MFA-12): they hand over the code in person.
    """
    async with acting_as(pool, principal) as conn:
        await _ensure_admin_may_act_on(conn, principal, account_id)
        account = await queries.reset_factors(conn, account_id)
        if account is None:
            raise NotFound("No such account")
        await queries.end_all_sessions(conn, account_id)
        # The lost phone must not stay a factor: re-enrolment registers a new device key.
        await queries.revoke_account_devices(conn, account_id)
        code, code_hash = new_invite_code()
        created = await queries.create_reset_invite(
            conn,
            code_hash,
            account.role,
            account.handle,
            principal.account_id,
            ctx.settings.invite_ttl_s,
            account_id,
        )
        await queries.unlock(conn, account_id, ctx.keyring.handle_key(account.handle))
        await record(
            conn,
            AuditAction.FACTOR_RESET,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="account",
            subject_id=str(account_id),
        )
    return ResetIssued(
        account_id=account_id,
        expires_at=created.expires_at,
        payload=_invite_payload(ctx, server_url, code),
    )


async def unlock_account(
    ctx: IdentityContext, pool: db.Pool, principal: Principal, account_id: uuid.UUID
) -> None:
    async with acting_as(pool, principal) as conn:
        await _ensure_admin_may_act_on(conn, principal, account_id)
        handle = await queries.account_handle(conn, account_id)
        if handle is None or not await queries.unlock(
            conn, account_id, ctx.keyring.handle_key(handle)
        ):
            raise NotFound("No such account")
        await record(
            conn,
            AuditAction.ACCOUNT_UNLOCKED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="account",
            subject_id=str(account_id),
        )


async def revoke_device(pool: db.Pool, principal: Principal, device_id: uuid.UUID) -> None:
    if principal.duress:
        return  # looks done; a coercer must not be able to cut off the real phone
    async with acting_as(pool, principal) as conn:
        # RLS lets an account see only its own devices, an admin all of them.
        account_id = await queries.revoke_device(conn, device_id)
        if account_id is None:
            raise NotFound("No such device")
        await queries.end_device_sessions(conn, device_id)
        await record(
            conn,
            AuditAction.DEVICE_REVOKED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="device",
            subject_id=str(device_id),
        )


async def sweep_expired(ctx: IdentityContext, pool: db.Pool) -> None:
    """Deletes replay-cache entries and throttle windows that can no longer matter."""
    async with as_authenticator(pool) as conn:
        await queries.sweep_expired(conn, ctx.settings.source_window_s)
