"""Liveness and readiness probes: public, cheap, and silent about internals."""

from __future__ import annotations

import asyncio

import asyncpg
import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from server.db import Pool
from server.errors import ServiceUnavailable
from server.health import queries
from server.settings import Settings


class Status(msgspec.Struct, frozen=True):
    status: str


class HealthController(Controller):
    path = "/"
    tags = ["health"]  # noqa: RUF012  (Litestar reads this class attribute)

    @get("/healthz", summary="The process is alive")
    async def healthz(self) -> Status:
        return Status(status="ok")

    @get("/readyz", summary="The database answers")
    async def readyz(
        self, pool: NamedDependency[Pool], settings: NamedDependency[Settings]
    ) -> Status:
        try:
            async with asyncio.timeout(settings.db_connect_timeout_s), pool.acquire() as conn:
                await queries.ping(conn)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Why it failed goes to nobody but the operator's database log.
            raise ServiceUnavailable("The database is not answering") from None
        return Status(status="ready")
