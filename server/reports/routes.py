"""Report routes: intake for operatives, queue and triage for investigators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.keys.service import DirectoryCache
from server.reports import service
from server.reports.schemas import (
    MAX_CIPHERTEXT_BYTES,
    OwnPage,
    OwnReport,
    QueuePage,
    Receipt,
    ReportDetail,
    ReportSubmission,
    Status,
    TriageRequest,
    TriageResult,
)
from server.settings import Settings
from server.wire import read_json

# A report body is base64 ciphertext (4/3 of its size) plus a little JSON; the ciphertext's own
# limit is the setting `max_report_ciphertext_bytes`, checked after decoding.
REPORT_BODY_BYTES = MAX_CIPHERTEXT_BYTES * 4 // 3 + 16_384


class ReportController(Controller):
    path = "/v1/reports"
    tags = ["reports"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post(
        "/",
        opt=requires(Permission.REPORT_SUBMIT),
        request_max_body_size=REPORT_BODY_BYTES,
        summary="Submit an encrypted, device-signed report (idempotent by report id)",
        status_code=201,
    )
    async def submit(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
        directories: NamedDependency[DirectoryCache],
    ) -> Response[Receipt]:
        submission = await read_json(request, ReportSubmission)
        receipt, created = await service.submit(settings, pool, directories, principal, submission)
        # 201 for the first copy, 200 with the same receipt for any retry of it.
        return Response(receipt, status_code=201 if created else 200)

    @get("/", opt=requires(Permission.REPORT_READ), summary="The queue, or an operative's own")
    async def list_reports(
        self,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        status: Annotated[Status | None, QueryParameter()] = None,
        priority: Annotated[int | None, QueryParameter(ge=0, le=3)] = None,
        received_from: Annotated[datetime | None, QueryParameter()] = None,
        received_until: Annotated[datetime | None, QueryParameter()] = None,
        operative_id: Annotated[UUID | None, QueryParameter()] = None,
        cursor: Annotated[str | None, QueryParameter(max_length=256)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 50,
    ) -> QueuePage | OwnPage:
        return await service.queue(
            pool,
            principal,
            status=status,
            priority=priority,
            received_from=received_from,
            received_until=received_until,
            operative_id=operative_id,
            cursor=cursor,
            limit=limit,
        )

    @get("/{report_id:uuid}", opt=requires(Permission.REPORT_READ), summary="One report")
    async def read(
        self,
        report_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> ReportDetail | OwnReport:
        return await service.read(pool, principal, report_id)

    @patch(
        "/{report_id:uuid}",
        opt=requires(Permission.REPORT_TRIAGE),
        summary="Move a report through triage; set its priority",
    )
    async def triage(
        self,
        request: Request[Any, Any, State],
        report_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> TriageResult:
        change = await read_json(request, TriageRequest)
        return await service.triage(pool, principal, report_id, change)
