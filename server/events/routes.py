"""`GET /v1/events`: server-sent events (WHATWG HTML §9.2) for every authenticated role.

The router's guard has authenticated the request (DPoP-bound session) before the handler runs;
the stream then re-checks that session itself, because it outlives the one proof it came with.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.response import Stream

from server.db import Pool
from server.errors import ServiceUnavailable
from server.events import service
from server.events.hub import EventHub
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal

EVENT_STREAM = "text/event-stream"
# How long a client should wait before trying again while this process is not listening.
RETRY_AFTER_S = 5


def provide_hub(state: State) -> EventHub:
    hub = state.get("events")
    if not isinstance(hub, EventHub):
        raise ServiceUnavailable("Live events are not running")
    return hub


class EventsController(Controller):
    path = "/v1/events"
    tags = ["events"]  # noqa: RUF012  (Litestar reads this class attribute)
    dependencies = {"hub": Provide(provide_hub, sync_to_thread=False)}  # noqa: RUF012

    @get(
        "/",
        opt=requires(Permission.EVENTS_READ),
        media_type=EVENT_STREAM,
        summary="Server-sent events: ids of new reports, replies and status changes",
    )
    async def stream(
        self,
        request: Request[Any, Any, State],
        pool: NamedDependency[Pool],
        principal: NamedDependency[Principal],
        hub: NamedDependency[EventHub],
    ) -> Stream:
        last_event_id = service.parse_last_event_id(request.headers.getall("last-event-id", []))
        if not hub.listening:
            raise ServiceUnavailable(
                "Live events are reconnecting; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return Stream(
            service.event_stream(pool, hub, principal, last_event_id),
            media_type=EVENT_STREAM,
            # Proxies such as nginx would otherwise buffer the stream and delay every event.
            headers={"X-Accel-Buffering": "no"},
        )
