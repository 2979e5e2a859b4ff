"""Lead routes: investigators build, share and watch leads; officers read what is open to them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath

from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.leads import service
from server.leads.schemas import (
    MAX_CIPHERTEXT_BYTES,
    AccessLog,
    Assignments,
    LeadCreated,
    LeadDetail,
    LeadRequest,
    OutcomeRequest,
    OutcomeView,
    ShareContent,
    ShareRequest,
    ShareView,
)
from server.settings import Settings
from server.wire import read_json

# Base64 ciphertext (4/3 of its size) plus a little JSON; the ciphertext's own limit is the
# setting `max_share_ciphertext_bytes`, checked after decoding.
SEALED_BODY_BYTES = MAX_CIPHERTEXT_BYTES * 4 // 3 + 16_384


class LeadController(Controller):
    path = "/v1/leads"
    tags = ["leads"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post(
        "/",
        opt=requires(Permission.LEAD_MANAGE),
        request_max_body_size=SEALED_BODY_BYTES,
        status_code=201,
        summary="Create a lead from verified reports",
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> LeadCreated:
        body = await read_json(request, LeadRequest)
        return await service.create_lead(settings, pool, principal, body)

    @get("/{lead_id:uuid}", opt=requires(Permission.LEAD_MANAGE), summary="One lead, its shares")
    async def detail(
        self,
        lead_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> LeadDetail:
        return await service.lead_detail(pool, principal, lead_id)

    @post(
        "/{lead_id:uuid}/shares",
        opt=requires(Permission.LEAD_MANAGE),
        request_max_body_size=SEALED_BODY_BYTES,
        status_code=201,
        summary="Share a lead with one officer, encrypted to them, inside a window",
    )
    async def share(
        self,
        request: Request[Any, Any, State],
        lead_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> ShareView:
        body = await read_json(request, ShareRequest)
        return await service.share(settings, pool, principal, lead_id, body)

    @post(
        "/{lead_id:uuid}/close",
        opt=requires(Permission.LEAD_MANAGE),
        status_code=204,
        summary="Close a lead; every live share of it is revoked",
    )
    async def close(
        self,
        lead_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.close_lead(pool, principal, lead_id)

    @get(
        "/{lead_id:uuid}/access-log",
        opt=requires(Permission.LEAD_MANAGE),
        summary="Who opened the lead's shares, and when",
    )
    async def access_log(
        self,
        lead_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> AccessLog:
        return await service.access_log(pool, principal, lead_id)

    @post(
        "/{lead_id:uuid}/outcome",
        opt=requires(Permission.LEAD_OUTCOME),
        request_max_body_size=SEALED_BODY_BYTES,
        status_code=201,
        summary="Report what came of a lead (an officer holding an open share)",
    )
    async def outcome(
        self,
        request: Request[Any, Any, State],
        lead_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> OutcomeView:
        body = await read_json(request, OutcomeRequest)
        return await service.record_outcome(settings, pool, principal, lead_id, body)


class ShareController(Controller):
    path = "/v1"
    tags = ["shares"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post(
        "/shares/{share_id:uuid}/approve",
        opt=requires(Permission.LEAD_MANAGE),
        status_code=200,
        summary="Approve a pending share (dual control: a second investigator)",
    )
    async def approve(
        self,
        share_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ShareView:
        return await service.approve_share(pool, principal, share_id)

    @delete(
        "/shares/{share_id:uuid}",
        opt=requires(Permission.LEAD_MANAGE),
        status_code=204,
        summary="Revoke a share at once",
    )
    async def revoke(
        self,
        share_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.revoke_share(pool, principal, share_id)

    @get(
        "/shares/{share_id:uuid}",
        opt=requires(Permission.SHARE_READ),
        summary="Open a share (its officer, inside its window); logged",
    )
    async def open_share(
        self,
        share_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> ShareContent:
        return await service.open_share(settings, pool, principal, share_id)

    @post(
        "/shares/{share_id:uuid}/ack",
        opt=requires(Permission.SHARE_READ),
        status_code=204,
        summary="Acknowledge a share",
    )
    async def acknowledge(
        self,
        share_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.acknowledge(settings, pool, principal, share_id)

    @get(
        "/assignments",
        opt=requires(Permission.SHARE_READ),
        summary="The officer's shares that are open now",
    )
    async def assignments(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Assignments:
        return await service.assignments(pool, principal)
