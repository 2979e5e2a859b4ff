"""What `/metrics` reports, and nothing that could point at a person.

Labels come only from closed sets: the HTTP method (unknown ones fold into "other"), the route
TEMPLATE (never the raw path, which carries account, report and device ids), the status code,
and fixed state names. A seized or leaked Prometheus server then learns load and health, not
who reported or logged in (DESIGN §5, minimal metadata).

Request figures are per process (each granian worker counts its own); the database figures are
the installation's, read at scrape time, so every replica reports the same queue and backlog.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from pathlib import Path

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server import db
from server.audit.actions import AuditAction
from server.audit.service import AUDITOR_ROLE
from server.metrics import queries
from server.settings import SettingsError, env_name

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
# A shorter token could be guessed by a scraper-shaped brute force; 32 characters of
# `openssl rand -hex 32` (or base64) is far past that.
MIN_TOKEN_LENGTH = 32
UNMATCHED_ROUTE = "<unmatched>"
# An attacker chooses the method string; folding unknown ones keeps the label set closed, so
# the registry cannot be grown without bound (memory exhaustion) by junk requests.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LOGIN_FAILURE_ACTIONS = (AuditAction.LOGIN_FAILED, AuditAction.LOGIN_THROTTLED)
# Latency buckets (seconds) around what the service does: sub-10 ms reads, argon2 logins
# (~100-300 ms), report uploads.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A scrape must never hang on a database that is failing over.
DATABASE_TIMEOUT_S = 5.0
# The report queue is read under the investigators' RLS context: the only policy that lets a
# count see every report. The statement is fixed and returns one number.
QUEUE_READER_ROLE = "investigator"


def load_token(path: Path) -> bytes:
    """The scrape token from its file (a compose/Kubernetes secret), checked at start-up."""
    try:
        token = path.read_bytes().strip()
    except OSError:
        raise SettingsError(f"{env_name('metrics_token_file')}: cannot be read") from None
    if len(token) < MIN_TOKEN_LENGTH:
        raise SettingsError(
            f"{env_name('metrics_token_file')}: the token must be at least "
            f"{MIN_TOKEN_LENGTH} characters"
        )
    return token


def token_matches(expected: bytes, presented: bytes) -> bool:
    # Digests first, so neither the content nor the length of the token leaks through timing.
    return hmac.compare_digest(
        hashlib.sha256(expected).digest(), hashlib.sha256(presented).digest()
    )


class _Snapshot:
    """The database-wide figures read at the last scrape (None: the database did not answer)."""

    def __init__(self) -> None:
        self.pool_size = 0
        self.pool_idle = 0
        self.pool_max = 0
        self.database_up = False
        self.queue_depth: int | None = None
        self.unsealed: int | None = None
        self.oldest_unsealed_s: float | None = None
        self.login_failures: dict[str, int] | None = None


class _DatabaseCollector(Collector):
    def __init__(self, snapshot: _Snapshot) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        s = self._snapshot
        pool = GaugeMetricFamily(
            "tipline_db_pool_connections",
            "Connections in this process's pool, by state",
            labels=["state"],
        )
        pool.add_metric(["open"], s.pool_size)
        pool.add_metric(["in_use"], s.pool_size - s.pool_idle)
        pool.add_metric(["max"], s.pool_max)
        yield pool
        yield GaugeMetricFamily(
            "tipline_db_up",
            "1 if the last scrape's database reads succeeded",
            value=1 if s.database_up else 0,
        )
        if s.queue_depth is not None:
            yield GaugeMetricFamily(
                "tipline_reports_queue_depth",
                "Reports in status new, waiting for triage",
                value=s.queue_depth,
            )
        if s.unsealed is not None and s.oldest_unsealed_s is not None:
            yield GaugeMetricFamily(
                "tipline_audit_unsealed_events",
                "Committed audit events not yet sealed into the hash chain",
                value=s.unsealed,
            )
            yield GaugeMetricFamily(
                "tipline_audit_seal_lag_seconds",
                "Age of the oldest unsealed audit event (0 when none waits)",
                value=s.oldest_unsealed_s,
            )
        if s.login_failures is not None:
            failures = CounterMetricFamily(
                "tipline_login_failures",
                "Refused logins recorded in the audit log, by outcome",
                labels=["outcome"],
            )
            for action in LOGIN_FAILURE_ACTIONS:
                outcome = action.value.rpartition(".")[2]
                failures.add_metric([outcome], s.login_failures.get(action.value, 0))
            yield failures


class Metrics:
    """One registry per app, so two apps in one process (tests) never share counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = Counter(
            "tipline_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "tipline_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self.registry.register(_DatabaseCollector(self._snapshot))

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        method = method if method in KNOWN_METHODS else "other"
        status_label = str(status) if 100 <= status <= 599 else "other"
        self._requests.labels(method, route, status_label).inc()
        self._latency.labels(method, route).observe(duration_s)

    async def render(self, pool: db.Pool) -> bytes:
        await self._refresh(pool)
        return generate_latest(self.registry)

    async def _refresh(self, pool: db.Pool) -> None:
        s = self._snapshot
        s.pool_size, s.pool_idle, s.pool_max = (
            pool.get_size(),
            pool.get_idle_size(),
            pool.get_max_size(),
        )
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_S):
                async with db.transaction(pool, role=QUEUE_READER_ROLE) as conn:
                    queue_depth = await queries.report_queue_depth(conn)
                async with db.transaction(pool, role=AUDITOR_ROLE) as conn:
                    backlog = await queries.audit_backlog(conn)
                    failures = await queries.login_failures(
                        conn, [a.value for a in LOGIN_FAILURE_ACTIONS]
                    )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            # Stale figures would look healthy; report them absent and the database down.
            s.database_up = False
            s.queue_depth = s.unsealed = s.oldest_unsealed_s = s.login_failures = None
            return
        s.database_up = True
        s.queue_depth = queue_depth
        s.unsealed, s.oldest_unsealed_s = backlog.unsealed, backlog.oldest_age_s
        s.login_failures = failures
