"""Identity routes: decode, call the service, encode. No SQL and no rules here."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from server.audit.actions import AuditAction
from server.db import Pool
from server.errors import Unauthenticated
from server.identity import service
from server.identity.guards import client_address, dpop_claims, requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.identity.schemas import (
    AccountList,
    AccountView,
    DuressPasswordRequest,
    EnrolmentConfirmation,
    EnrolmentRequest,
    EnrolmentStarted,
    InviteCreated,
    InviteRequest,
    LoginRequest,
    ResetIssued,
    SessionCreated,
)
from server.wire import read_json

Identity = NamedDependency[service.IdentityContext]
AnyRequest = Request[Any, Any, State]


def _server_url(request: AnyRequest) -> str:
    return str(request.base_url).rstrip("/")


class LoginController(Controller):
    """Public: the only routes that take no session, each throttled per source address."""

    path = "/v1"
    tags = ["identity"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post("/enrolments", status_code=201, summary="Redeem an invite: password, device key, age key")
    async def enrol(
        self, request: AnyRequest, identity: Identity, pool: NamedDependency[Pool]
    ) -> EnrolmentStarted:
        await service.count_source_attempt(
            identity, pool, client_address(request, identity.settings)
        )
        body = await read_json(request, EnrolmentRequest)
        claims = dpop_claims(request, identity, access_token=None)
        return await service.enrol(identity, pool, body, claims)

    @post("/enrolments/confirm", status_code=200, summary="Activate with the first TOTP code")
    async def confirm(
        self, request: AnyRequest, identity: Identity, pool: NamedDependency[Pool]
    ) -> AccountView:
        await service.count_source_attempt(
            identity, pool, client_address(request, identity.settings)
        )
        body = await read_json(request, EnrolmentConfirmation)
        claims = dpop_claims(request, identity, access_token=None)
        return await service.confirm_enrolment(identity, pool, body, claims)

    @post("/sessions", status_code=201, summary="Log in: handle, password, TOTP, DPoP proof")
    async def login(
        self, request: AnyRequest, identity: Identity, pool: NamedDependency[Pool]
    ) -> SessionCreated:
        # Throttle before any expensive work: the source limit, then the per-handle back-off,
        # both before argon2 runs.
        await service.count_source_attempt(
            identity, pool, client_address(request, identity.settings)
        )
        body = await read_json(request, LoginRequest)
        try:
            claims = dpop_claims(request, identity, access_token=None)
        except Unauthenticated:
            await service.record_failure(pool, AuditAction.LOGIN_FAILED, reason="dpop")
            raise
        return await service.login(identity, pool, body, claims)


class SessionController(Controller):
    path = "/v1"
    tags = ["identity"]  # noqa: RUF012

    @get("/me", opt=requires(Permission.SESSION_OWN), summary="The account behind this session")
    async def me(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> AccountView:
        return await service.me(pool, principal)

    @delete("/sessions/current", opt=requires(Permission.SESSION_OWN), summary="Log out")
    async def logout(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> None:
        await service.logout(pool, principal)

    @put(
        "/me/duress-password",
        status_code=204,
        opt=requires(Permission.DURESS_SET),
        summary="Set the duress password (needs the current password)",
    )
    async def set_duress_password(
        self,
        request: AnyRequest,
        principal: NamedDependency[Principal],
        identity: Identity,
        pool: NamedDependency[Pool],
    ) -> None:
        body = await read_json(request, DuressPasswordRequest)
        await service.set_duress_password(identity, pool, principal, body)

    @post(
        "/devices/{device_id:uuid}/revoke",
        status_code=204,
        opt=requires(Permission.DEVICE_REVOKE_OWN),
        summary="Revoke a device key; its sessions end at once",
    )
    async def revoke_device(
        self,
        device_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.revoke_device(pool, principal, device_id)


class InviteController(Controller):
    path = "/v1/invites"
    tags = ["identity"]  # noqa: RUF012

    @post("/", status_code=201, opt=requires(Permission.INVITE_CREATE), summary="Invite an account")
    async def create(
        self,
        request: AnyRequest,
        principal: NamedDependency[Principal],
        identity: Identity,
        pool: NamedDependency[Pool],
    ) -> InviteCreated:
        body = await read_json(request, InviteRequest)
        return await service.invite(
            identity, pool, principal, body.role, body.handle, _server_url(request)
        )


class AccountController(Controller):
    path = "/v1/accounts"
    tags = ["identity"]  # noqa: RUF012

    @get("/", opt=requires(Permission.ACCOUNT_LIST), summary="Accounts, alarms first")
    async def list_accounts(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 100,
    ) -> AccountList:
        return await service.list_accounts(pool, principal, limit)

    @post("/{account_id:uuid}/suspend", status_code=204, opt=requires(Permission.ACCOUNT_MANAGE))
    async def suspend(
        self,
        account_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.set_account_status(pool, principal, account_id, suspended=True)

    @post("/{account_id:uuid}/reactivate", status_code=204, opt=requires(Permission.ACCOUNT_MANAGE))
    async def reactivate(
        self,
        account_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.set_account_status(pool, principal, account_id, suspended=False)

    @post("/{account_id:uuid}/unlock", status_code=204, opt=requires(Permission.ACCOUNT_MANAGE))
    async def unlock(
        self,
        account_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        identity: Identity,
        pool: NamedDependency[Pool],
    ) -> None:
        await service.unlock_account(identity, pool, principal, account_id)

    @post(
        "/{account_id:uuid}/reset",
        status_code=201,
        opt=requires(Permission.ACCOUNT_MANAGE),
        summary="Wipe password and TOTP; returns a one-time re-enrolment code",
    )
    async def reset(
        self,
        request: AnyRequest,
        account_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        identity: Identity,
        pool: NamedDependency[Pool],
    ) -> ResetIssued:
        return await service.reset_factors(
            identity, pool, principal, account_id, _server_url(request)
        )
