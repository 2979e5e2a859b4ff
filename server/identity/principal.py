"""Who is asking: established once per request from the session token and DPoP proof."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from uuid import UUID

import msgspec

from server import db
from server.identity.permissions import Role

# Service contexts for row-level security (0003_identity.sql): never a person's role.
AUTHENTICATOR = "authenticator"


class Principal(msgspec.Struct, frozen=True):
    account_id: UUID
    role: Role
    handle: str
    session_id: UUID
    device_id: UUID
    # A session opened with the duress password: it must see nothing real.
    duress: bool
    # The public key of the device the session is bound to (RFC 7638 members), as presented in
    # this request's DPoP proof and matched to the session by its thumbprint.
    device_key: dict[str, str]


def acting_as(pool: db.Pool, principal: Principal) -> AbstractAsyncContextManager[db.Connection]:
    """The request's transaction, with row-level security keyed to this principal."""
    return db.transaction(
        pool, account_id=principal.account_id, role=principal.role, duress=principal.duress
    )


def as_authenticator(pool: db.Pool) -> AbstractAsyncContextManager[db.Connection]:
    """A transaction for work done before anyone is known: login, enrolment, session checks."""
    return db.transaction(pool, role=AUTHENTICATOR)
