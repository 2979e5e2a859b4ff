"""Message routes: write and read a report's thread; the inbox."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath

from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.messages import service
from server.messages.schemas import Inbox, MessageAccepted, MessageSubmission, Thread
from server.reports.routes import REPORT_BODY_BYTES
from server.settings import Settings
from server.wire import read_json


class MessageController(Controller):
    path = "/v1"
    tags = ["messages"]  # noqa: RUF012  (Litestar reads this class attribute)

    @post(
        "/reports/{report_id:uuid}/messages",
        opt=requires(Permission.MESSAGE_WRITE),
        request_max_body_size=REPORT_BODY_BYTES,
        status_code=201,
        summary="Add an encrypted, device-signed message to a report's thread",
    )
    async def send(
        self,
        request: Request[Any, Any, State],
        report_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
    ) -> Response[MessageAccepted]:
        submission = await read_json(request, MessageSubmission)
        accepted, created = await service.send(settings, pool, principal, report_id, submission)
        return Response(accepted, status_code=201 if created else 200)

    @get(
        "/reports/{report_id:uuid}/messages",
        opt=requires(Permission.MESSAGE_READ),
        summary="A report's thread, oldest first",
    )
    async def thread(
        self,
        report_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> Thread:
        return await service.thread(pool, principal, report_id)

    @get("/inbox", opt=requires(Permission.MESSAGE_READ), summary="Messages to me, unread first")
    async def inbox(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> Inbox:
        return await service.inbox(pool, principal)

    @post(
        "/messages/{message_id:uuid}/read",
        opt=requires(Permission.MESSAGE_READ),
        status_code=204,
        summary="Mark a message read",
    )
    async def mark_read(
        self,
        message_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> None:
        await service.mark_read(pool, principal, message_id)
