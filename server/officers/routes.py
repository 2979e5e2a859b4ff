"""Officer vetting routes (investigators only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath

from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.officers import service
from server.officers.schemas import OfficerList, OfficerProposal, OfficerView
from server.settings import Settings
from server.wire import read_json


class OfficerController(Controller):
    path = "/v1/officers"
    tags = ["officers"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post(
        "/",
        opt=requires(Permission.OFFICER_VET),
        status_code=201,
        summary="Propose an officer (or renew a lapsed or suspended vetting)",
    )
    async def propose(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> OfficerView:
        proposal = await read_json(request, OfficerProposal)
        return await service.propose(settings, pool, principal, proposal)

    @get("/", opt=requires(Permission.OFFICER_VET), summary="The vetting list")
    async def list_officers(
        self,
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> OfficerList:
        return await service.list_officers(settings, pool, principal)

    @post(
        "/{officer_id:uuid}/approve",
        opt=requires(Permission.OFFICER_VET),
        status_code=200,
        summary="Approve a proposed officer (a second investigator)",
    )
    async def approve(
        self,
        officer_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> OfficerView:
        return await service.approve(settings, pool, principal, officer_id)

    @post(
        "/{officer_id:uuid}/suspend",
        opt=requires(Permission.OFFICER_VET),
        status_code=204,
        summary="Suspend an officer at once: sessions end, shares stop opening",
    )
    async def suspend(
        self,
        officer_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.suspend(pool, principal, officer_id)

    @post(
        "/{officer_id:uuid}/revoke",
        opt=requires(Permission.OFFICER_VET),
        status_code=204,
        summary="Revoke an officer for good: sessions end, shares stop opening",
    )
    async def revoke(
        self,
        officer_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.revoke(pool, principal, officer_id)
