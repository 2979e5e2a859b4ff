"""The HTTP side of authentication: DPoP-bound session tokens and the permission guard.

One guard sits on every authenticated router. It refuses a route that declares no permission
(fail closed), then authenticates the request: `Authorization: DPoP <token>` plus a fresh `DPoP`
proof signed by the key the session is bound to (RFC 9449 §7). Tokens are accepted in that
header only, never in a URL (SEC-SESS-09).
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any, Final

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from server.audit.actions import AuditAction
from server.db import Pool
from server.errors import Forbidden, Unauthenticated
from server.identity import service
from server.identity.dpop import DPOP_CHALLENGE, DPoPClaims, verify_proof
from server.identity.permissions import Permission, allows
from server.identity.principal import Principal
from server.settings import Settings

PERMISSION_KEY: Final = "permission"
_AUTHORIZATION: Final = re.compile(r"^DPoP ([A-Za-z0-9_-]{43})$", re.IGNORECASE | re.ASCII)


def requires(permission: Permission) -> dict[str, Any]:
    """Route `opt` declaring the one permission a route needs."""
    return {PERMISSION_KEY: permission}


def target_url(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The URL the client addressed, as a DPoP proof must name it (`htu`)."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + connection.scope["path"]
    return str(connection.url)


def dpop_claims(
    connection: ASGIConnection[Any, Any, Any, Any],
    identity: service.IdentityContext,
    access_token: str | None,
) -> DPoPClaims:
    settings = identity.settings
    proofs = connection.headers.getall("dpop", [])
    if len(proofs) != 1:
        raise Unauthenticated("A single DPoP proof is required", headers=DPOP_CHALLENGE)
    return verify_proof(
        proofs[0],
        method=str(connection.scope.get("method", "")),
        url=target_url(connection, settings),
        now=time.time(),
        max_age_s=settings.dpop_max_age_s,
        max_future_s=settings.dpop_max_future_s,
        access_token=access_token,
        expected_thumbprint=None,
    )


def client_address(connection: ASGIConnection[Any, Any, Any, Any], settings: Settings) -> str:
    """The address per-source limits key on: the socket peer, unless that peer is a trusted
    proxy, whose own appended X-Forwarded-For entry (the last) then names the client."""
    peer = connection.client.host if connection.client else "unknown"
    if not settings.is_trusted_proxy(peer):
        return peer
    # Only the last entry: the ones before it are whatever the client sent, and walking back
    # through them would let a client behind one proxy pick its own throttle key.
    forwarded = ",".join(connection.headers.getall("x-forwarded-for", []))
    last = forwarded.rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(last))
    except ValueError:
        return peer


async def authorize(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    permission = handler.opt.get(PERMISSION_KEY)
    if not isinstance(permission, Permission):
        raise Forbidden("This route declares no permission")
    identity: service.IdentityContext = connection.app.state.identity
    pool = connection.app.state.pool
    try:
        principal = await _authenticate(connection, identity, pool)
    except Unauthenticated as refused:
        await service.record_failure(pool, AuditAction.ACCESS_DENIED, reason=_reason(refused))
        raise
    if not allows(principal.role, permission):
        await service.record_failure(
            pool, AuditAction.ACCESS_DENIED, reason="role", principal=principal
        )
        raise Forbidden("This role may not do this")
    connection.scope["user"] = principal


async def _authenticate(
    connection: ASGIConnection[Any, Any, Any, Any],
    identity: service.IdentityContext,
    pool: Pool,
) -> Principal:
    authorization = connection.headers.getall("authorization", [])
    match = _AUTHORIZATION.match(authorization[0]) if len(authorization) == 1 else None
    if match is None:
        raise Unauthenticated("A DPoP-bound access token is required", headers=DPOP_CHALLENGE)
    token = match.group(1)
    claims = dpop_claims(connection, identity, access_token=token)
    return await service.authenticate(identity, pool, token, claims)


def _reason(refused: Unauthenticated) -> str:
    # A fixed tag for the audit line: the proof check's own reason, else a generic one.
    reason = getattr(refused, "reason", None)
    return f"dpop-{reason}" if isinstance(reason, str) else "session"


def current_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        raise Unauthenticated("Authentication required", headers=DPOP_CHALLENGE)
    return principal
