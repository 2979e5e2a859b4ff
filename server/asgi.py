"""The outermost ASGI layer: request id, fixed response headers, one access-log line.

It wraps the whole Litestar app, so even a request that matches no route gets an id, the
headers and a log line. What is logged is fixed here: method, route template (never the raw
path or query), status, duration, request id.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import REQUEST_ID_KEY

REQUEST_ID_HEADER = b"x-request-id"
# The API serves native clients, never a browser: nothing may be cached by an intermediary
# or sniffed into another content type (SEC-HDR-01). No CORS headers are ever sent.
FIXED_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)

_access_log = logging.getLogger("tipline.access")
# Called once per request with (method, route template, status, seconds): the metrics hook.
RequestObserver = Callable[[str, str, int, float], None]


def edge_middleware(app: ASGIApp, observe: RequestObserver | None = None) -> ASGIApp:
    """Gives every HTTP request a fresh random id, the fixed headers, and one log line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # Generated here, never taken from the client: a client-chosen id could be used to
        # forge or correlate log lines.
        request_id = secrets.token_hex(16)
        scope.setdefault("state", {})[REQUEST_ID_KEY] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.extend(FIXED_HEADERS)
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template", "<unmatched>")
            _access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            if observe is not None:
                observe(str(scope.get("method", "")), route, status, elapsed)

    return middleware
