"""`/v1/audit`: the audit log and its verification, for investigators and admins.

The router's guard checks `audit:any:read`; row-level security refuses every other role too.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from server.audit import service
from server.audit.actions import AuditAction
from server.audit.schemas import AuditPage, VerifyResult
from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal, acting_as


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]  # noqa: RUF012  (Litestar reads this class attribute)

    @get("/", opt=requires(Permission.AUDIT_READ), summary="Audit events, newest first")
    async def list_events(
        self,
        pool: NamedDependency[Pool],
        principal: NamedDependency[Principal],
        limit: Annotated[int, QueryParameter(ge=1, le=service.MAX_PAGE)] = service.DEFAULT_PAGE,
        before_id: Annotated[int | None, QueryParameter(ge=1)] = None,
        action: FromQuery[AuditAction | None] = None,
        actor_id: FromQuery[UUID | None] = None,
    ) -> AuditPage:
        async with acting_as(pool, principal) as conn:
            return await service.list_events(
                conn, limit=limit, before_id=before_id, action=action, actor_id=actor_id
            )

    @get("/verify", opt=requires(Permission.AUDIT_READ), summary="Recompute the audit hash chain")
    async def verify(
        self, pool: NamedDependency[Pool], principal: NamedDependency[Principal]
    ) -> VerifyResult:
        async with acting_as(pool, principal) as conn:
            return await service.verify_chain(conn)
