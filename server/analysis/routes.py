"""Analysis routes (investigators)."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency

from server.analysis import service
from server.analysis.schemas import Exposure, Programme
from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal


class AnalysisController(Controller):
    path = "/v1"
    tags = ["analysis"]  # noqa: RUF012  (Litestar reads this class attribute)

    @get(
        "/analysis/exposure",
        opt=requires(Permission.ANALYSIS_READ),
        summary="Which officers could read the leads whose target was gone",
    )
    async def exposure(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Exposure:
        return await service.exposure(pool, principal)

    @get(
        "/metrics/programme",
        opt=requires(Permission.ANALYSIS_READ),
        summary="Reports, leads, raids, arrests and victims safe, per month",
    )
    async def programme(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Programme:
        return await service.programme(pool, principal)
