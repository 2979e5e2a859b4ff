"""Report submissions per second through the secure path against a bare endpoint; queue listing
latency with 1,000,000 reports in the table.

Run from the repository root: `.venv/bin/python bench/reports_load.py` (about 7 minutes; --help;
`--py-spy PATH` adds one profiled phase per endpoint).

One embedded PostgreSQL in a temporary folder, migrated, holds one installation: an offline
root key (made here), a signed key directory naming one investigator, and `--operatives`
operatives, each enrolled and logged in through the reference client with a device key of
their own (P-256, as phones hold) and so a DPoP-bound session of their own. Two HTTP servers
run on loopback, both under granian exactly as `tipline serve` builds it (`server/cli.py`
`_http_server`: one supervising process, TIPLINE_HTTP_WORKERS workers, HTTP/1.1, JSON logs):

- secure: `tipline serve` itself (`python -m server.cli serve`), `POST /v1/reports`: DPoP proof
  check, session lookup + jti insert, strict JSON decode, key directory version, age header
  form, device signature, idempotent insert, audit row, event publish (NOTIFY);
- bare: `bare_app` below, `POST /v1/reports`: msgspec decode, one INSERT ... ON CONFLICT DO
  NOTHING of the same row into `bench.reports_bare` (created here as superuser with the same
  columns, checks, indexes and foreign keys as `tipline.reports`), from a pool built by
  `server.db.create_pool` with the same settings. No checks at all.

Part 1, submissions. wrk (Debian's package, one thread, `--connections` keep-alive
connections, closed loop) sends requests this process wrote to a file just before each phase.
A secure request is a fresh report: unique id, signed by its operative's device over (id,
sent-at, SHA-256 of the ciphertext), with a fresh DPoP proof naming the URL and its session
token. Proofs are made up front rather than inside the timed phase: a proof is valid for
TIPLINE_DPOP_MAX_AGE_S (60 s) after its `iat`, and a phase is far shorter, so the load
generator's timed work is only sending bytes. (The ciphertext is sealed once per operative and
reused: the server's cost does not depend on which bytes it hashes.) A bare request has the
same method, headers, header sizes and body size; only its report id is fresh (the bare
endpoint checks nothing). Phases alternate secure, bare, secure, bare ... after one warm-up
phase each; the table gives the median with min..max over `--rounds`, and the ratio paired
round by round. The cost of making the requests (untimed) and the CPU of every party during
the timed phases are reported too.

Part 2, listing. The reports table is topped up to `--rows` rows with INSERT ... SELECT
generate_series as superuser (200-byte ciphertexts, statuses and priorities spread, received
over about a year), then VACUUM ANALYZE. An investigator then lists `GET /v1/reports?limit=50`
(first page, filtered by status, a deep page through a cursor, and a filtered deep page) at
`--listing-rate` requests per second, open loop, over real HTTP with a fresh DPoP proof each,
round-robin over the variants. Finally the queue query is EXPLAIN ANALYZEd as the app runs it:
a prepared statement under the investigator's RLS context, after enough executions for
PostgreSQL's plan cache to have settled on a generic or custom plan.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import os
import select
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.server.mp import MPServer as Granian
from litestar import Litestar, Request, get, post

from bench import _harness
from bench._harness import (
    HOST,
    INVESTIGATOR,
    UNTHROTTLED,
    Lab,
    Server,
    cpu_seconds,
    first_invite_code,
    free_port,
    machine_cpu_seconds,
    machine_description,
    own_cpu_seconds,
    percentile,
    prepare_database,
    process_tree,
    run_in_lab,
    server_environment,
    span,
    start_server,
    stop_process_tree,
    tree_cpu_seconds,
    unwind_on_sigterm,
    wait_ready,
)
from clients.reference_client.api import Session, TiplineClient
from clients.reference_client.device import DeviceKeyPair, make_proof
from clients.reference_client.envelope import now_sent_at, seal, sign_report
from clients.reference_client.keys import (
    Directory,
    DirectoryEntry,
    public_key_b64,
    publish_directory,
    sign_directory_with,
    verify_directory,
)
from clients.reference_client.reports import Submission, TipReport
from server import db
from server.embedded import APP_ROLE, EmbeddedPostgres
from server.keyring import generate_key_file
from server.logs import configure_logging, json_log_config
from server.reports.service import encode_cursor
from server.settings import Settings, load_settings
from server.sql import query

THIS_FILE = str(Path(__file__).resolve())
DB_NAME = "tipline_bench_reports"
REPORT_PATH = "/v1/reports"
# A tip of about 1.4 KB: PADME-padded and sealed to one investigator it is an age ciphertext of
# about 1.8 KB, a 2.6 KB JSON body (PERFORMANCE.md's bare figure is for a 2 KB body).
TIP_TEXT = "Seen at the harbour gate, three minors moved into a white van. " * 22
OPERATIVE_ENV = "REPORTS_BENCH_OPERATIVE_ID"
DEVICE_ENV = "REPORTS_BENCH_DEVICE_ID"
# Margin over the fastest rate seen so far when sizing a phase's request file; a phase that
# still runs out stops early and is flagged.
SIZE_MARGIN = 1.6
WRK_READY = "ready"
LISTING_TIMEOUT_S = 5.0
STATUSES = ("new", "in_review", "verified", "rejected", "duplicate", "needs_info")

# --- the bare endpoint ---------------------------------------------------------------------------

BARE_TABLE = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE bench.reports_bare (LIKE tipline.reports INCLUDING ALL);
ALTER TABLE bench.reports_bare
    ADD FOREIGN KEY (operative_id) REFERENCES tipline.accounts (id),
    ADD FOREIGN KEY (device_id) REFERENCES tipline.devices (id);
GRANT USAGE ON SCHEMA bench TO tipline_app;
GRANT SELECT, INSERT ON bench.reports_bare TO tipline_app;
"""

BARE_INSERT = """
INSERT INTO bench.reports_bare (id, operative_id, device_id, sent_at, received_at,
                                directory_version, ciphertext, ciphertext_sha256, signature,
                                receipt)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO NOTHING
RETURNING receipt
"""


class BareSubmission(msgspec.Struct):
    report_id: uuid.UUID
    sent_at: str
    directory_version: int
    ciphertext: bytes
    signature: str
    attachments: list[Any] = msgspec.field(default_factory=list)


class BareReceipt(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    received_at: str
    receipt: str


def bare_app(settings: Settings, operative_id: uuid.UUID, device_id: uuid.UUID) -> Litestar:
    """Litestar + msgspec + asyncpg storing the row the secure path stores, checking nothing."""
    decoder = msgspec.json.Decoder(BareSubmission)
    pools: list[db.Pool] = []

    async def open_pool() -> None:
        assert settings.database_url is not None
        pools.append(await db.create_pool(settings, settings.database_url))

    async def close_pool() -> None:
        for pool in pools:
            await pool.close()

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @post(REPORT_PATH, status_code=201)
    async def submit(request: Request[Any, Any, Any]) -> BareReceipt:
        submission = decoder.decode(await request.body())
        digest = hashlib.sha256(submission.ciphertext).hexdigest()
        received_at = datetime.now(UTC).replace(microsecond=0)
        stamp = received_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        receipt = hashlib.sha256(f"{submission.report_id}{stamp}{digest}".encode()).hexdigest()
        await pools[0].fetchval(
            BARE_INSERT,
            submission.report_id,
            operative_id,
            device_id,
            submission.sent_at,
            received_at,
            submission.directory_version,
            submission.ciphertext,
            digest,
            submission.signature,
            receipt,
        )
        return BareReceipt(report_id=submission.report_id, received_at=stamp, receipt=receipt)

    return Litestar(
        route_handlers=[healthz, submit],
        on_startup=[open_pool],
        on_shutdown=[close_pool],
        openapi_config=None,
        debug=False,
        logging_config=None,
    )


def bare_app_from_environment() -> Litestar:
    """The bare app inside each granian worker, as `server.cli.app_from_environment`."""
    settings = load_settings(os.environ)
    configure_logging(settings.log_level)
    return bare_app(
        settings, uuid.UUID(os.environ[OPERATIVE_ENV]), uuid.UUID(os.environ[DEVICE_ENV])
    )


def serve_bare(port: int) -> int:
    """The bare app under granian with the options `server.cli._http_server` passes."""
    settings = load_settings(os.environ, port=port)
    configure_logging(settings.log_level)
    Granian(
        "bench.reports_load:bare_app_from_environment",
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=settings.http_workers,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=int(settings.http_header_read_timeout_s * 1000)
        ),
        log_dictconfig=json_log_config(settings.log_level),
        log_access=False,
        workers_kill_timeout=int(settings.http_graceful_shutdown_s),
    ).serve()
    return 0


# --- wrk -----------------------------------------------------------------------------------------

# Requests come from a file of length-prefixed raw HTTP requests, each sent once; a thread
# that runs out stops (the phase then ends early and is flagged). Globals, because
# `thread:get` reads a thread's globals.
WRK_SCRIPT = r"""
pending, count, sent, exhausted, statuses = {}, 0, 0, 0, {}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local pos = 1
  while pos <= #data do
    local newline = data:find("\n", pos, true)
    local length = tonumber(data:sub(pos, newline - 1))
    count = count + 1
    pending[count] = data:sub(newline + 1, newline + length)
    pos = newline + length + 1
  end
  data = nil
  fallback = wrk.format("GET", "/healthz")
  io.stderr:write("ready\n")
  io.stderr:flush()
end

function request()
  if sent < count then
    sent = sent + 1
    return pending[sent]
  end
  exhausted = exhausted + 1
  wrk.thread:stop()
  return fallback
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local codes, total_sent, total_exhausted = {}, 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_exhausted = total_exhausted + thread:get("exhausted")
    for code, n in pairs(thread:get("statuses")) do
      table.insert(codes, string.format('"%d":%d', code, n))
    end
  end
  local e = summary.errors
  io.write(string.format(
    '{"duration_us":%d,"requests":%d,"sent":%d,"exhausted":%d,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"socket_errors":%d,"statuses":{%s}}\n',
    summary.duration, summary.requests, total_sent, total_exhausted,
    latency:percentile(50.0), latency:percentile(99.0), latency.max,
    e.connect + e.read + e.write + e.timeout, table.concat(codes, ",")))
end
"""


class WrkResult(msgspec.Struct, frozen=True):
    duration_us: int
    requests: int
    sent: int
    exhausted: int
    p50_us: int
    p99_us: int
    max_us: int
    socket_errors: int
    statuses: dict[str, int]


# --- measuring CPU -------------------------------------------------------------------------------


PARTIES = ("server", "other server", "postgres", "wrk", "bench")


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    machine: float

    @classmethod
    def take(cls, server: int, other: int, postgres: int, wrk: int) -> Snapshot:
        return cls(
            at=time.monotonic(),
            cpu={
                "server": tree_cpu_seconds(server),
                "other server": tree_cpu_seconds(other),
                "postgres": tree_cpu_seconds(postgres),
                "wrk": cpu_seconds([wrk]),
                "bench": own_cpu_seconds(),
            },
            machine=machine_cpu_seconds(),
        )


@dataclass
class Phase:
    endpoint: str
    result: WrkResult
    wall_s: float
    cpu: dict[str, float]
    machine: float
    generate_us_per_request: float

    @property
    def ok(self) -> int:
        return sum(n for code, n in self.result.statuses.items() if code.startswith("2"))

    @property
    def failed(self) -> int:
        return self.result.requests - self.ok + self.result.socket_errors

    @property
    def rate(self) -> float:
        return self.ok / (self.result.duration_us / 1e6)

    def cores(self, party: str) -> float:
        return self.cpu[party] / self.wall_s

    @property
    def other(self) -> float:
        return max(0.0, self.machine - sum(self.cpu.values())) / self.wall_s

    def us_per_request(self, party: str) -> float:
        return self.cpu[party] / max(1, self.result.requests) * 1e6


# --- processes -----------------------------------------------------------------------------------


def _server_environment(
    app_url: str, workdir: Path, root_public_key: str, workers: int, extra: dict[str, str]
) -> dict[str, str]:
    # The throttles guard logins and enrolments; setting up dozens of operatives from one
    # address must not trip them.
    return server_environment(
        app_url,
        workdir,
        TIPLINE_ROOT_PUBLIC_KEY=root_public_key,
        TIPLINE_HTTP_WORKERS=str(workers),
        **UNTHROTTLED,
        **extra,
    )


def _start(name: str, port: int, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    return start_server(name, port, command, env, workdir / f"server-{name}.log")


# --- the installation ----------------------------------------------------------------------------


@dataclass
class Person:
    handle: str
    device: DeviceKeyPair = field(default_factory=DeviceKeyPair.generate)
    age_identity: Any = field(default_factory=pyrage.x25519.Identity.generate)
    session: Session | None = None
    ciphertext: bytes = b""

    @property
    def token(self) -> str:
        assert self.session is not None
        return self.session.access_token


async def enrol_and_login(url: str, person: Person, code: str) -> None:
    async with TiplineClient(url, person.device) as client:
        recipient = str(person.age_identity.to_public())
        person.session = await _harness.enrol_and_login(client, code, person.handle, recipient)


async def set_up(
    url: str, code: str, root_key: Ed25519PrivateKey, operatives: int
) -> tuple[Person, list[Person], Directory]:
    investigator = Person(INVESTIGATOR)
    await enrol_and_login(url, investigator, code)
    people = [Person(f"bench-operative-{i}") for i in range(operatives)]
    assert investigator.session is not None
    async with TiplineClient(url, investigator.device) as client:
        codes = [
            (await client.invite(investigator.session, "operative", p.handle)).code for p in people
        ]
        entry = DirectoryEntry(
            account_id=investigator.session.account.id,
            role="investigator",
            age_recipient=str(investigator.age_identity.to_public()),
            device_keys=[investigator.device.public_jwk()],
        )
        signed = sign_directory_with(root_key, 1, [entry])
        await publish_directory(client, investigator.token, signed)
    directory = verify_directory(signed, public_key_b64(root_key), None)
    # Each enrolment and login hashes with argon2 (TIPLINE_PASSWORD_HASH_CONCURRENCY = 4).
    limit = asyncio.Semaphore(4)

    async def one(person: Person, invite: str) -> None:
        async with limit:
            await enrol_and_login(url, person, invite)
        tip = TipReport(text=TIP_TEXT, location="harbour, gate 3", reply_to=None)
        person.ciphertext = seal(msgspec.json.encode(tip), directory.investigator_recipients())

    await asyncio.gather(*(one(p, c) for p, c in zip(people, codes, strict=True)))
    return investigator, people, directory


# --- requests ------------------------------------------------------------------------------------


def raw_request(port: int, token: str, proof: str, body: bytes) -> bytes:
    head = (
        f"POST {REPORT_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: DPoP {token}\r\nDPoP: {proof}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def secure_body(person: Person, directory: Directory, report_id: uuid.UUID) -> bytes:
    sent_at = now_sent_at()
    return msgspec.json.encode(
        Submission(
            report_id=report_id,
            sent_at=sent_at,
            directory_version=directory.version,
            ciphertext=base64.b64encode(person.ciphertext).decode("ascii"),
            signature=sign_report(person.device, report_id, sent_at, person.ciphertext),
        )
    )


def write_secure(
    path: Path, count: int, port: int, operatives: Sequence[Person], directory: Directory
) -> float:
    """Fresh reports, each signed, each with a fresh proof; returns CPU us per request."""
    started = time.process_time()
    url = f"http://{HOST}:{port}{REPORT_PATH}"
    with path.open("wb") as out:
        for i in range(count):
            # Round-robin: the connections in flight carry different operatives' sessions,
            # as in the field, rather than queueing on one session row's idle-timer update.
            person = operatives[i % len(operatives)]
            body = secure_body(person, directory, uuid.uuid4())
            proof = make_proof(person.device, "POST", url, access_token=person.token)
            request = raw_request(port, person.token, proof, body)
            out.write(b"%d\n" % len(request))
            out.write(request)
    return (time.process_time() - started) / max(1, count) * 1e6


def write_bare(path: Path, count: int, port: int, template: bytes, template_id: str) -> float:
    """The secure request's bytes with a fresh report id (the bare endpoint checks nothing)."""
    started = time.process_time()
    prefix, suffix = template.split(template_id.encode("ascii"))
    with path.open("wb") as out:
        for _ in range(count):
            request = prefix + str(uuid.uuid4()).encode("ascii") + suffix
            out.write(b"%d\n" % len(request))
            out.write(request)
    return (time.process_time() - started) / max(1, count) * 1e6


def bare_template(port: int, person: Person, directory: Directory) -> tuple[bytes, str]:
    report_id = uuid.uuid4()
    body = secure_body(person, directory, report_id)
    proof = make_proof(
        person.device, "POST", f"http://{HOST}:{port}{REPORT_PATH}", access_token=person.token
    )
    return raw_request(port, person.token, proof, body), str(report_id)


# --- part 1: submissions -------------------------------------------------------------------------


def run_wrk(
    server: Server,
    other: Server,
    postgres_pid: int,
    script: Path,
    requests_file: Path,
    args: argparse.Namespace,
    seconds: float,
) -> tuple[WrkResult, Snapshot, Snapshot]:
    command = [
        *("wrk", "-t1", f"-c{args.connections}", f"-d{seconds:g}s", "--timeout", "10s"),
        *("-s", str(script), server.url + REPORT_PATH, "--", str(requests_file)),
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, start_new_session=True
    )
    # A hung wrk must not hang the benchmark: it gets its duration plus a minute.
    watchdog = threading.Timer(seconds + 60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 120)
        line = process.stderr.readline().decode().strip() if ready else ""
        if line != WRK_READY:
            raise RuntimeError(f"wrk did not start: {line} {process.stderr.read().decode()}")
        before = Snapshot.take(server.process.pid, other.process.pid, postgres_pid, process.pid)
        output = process.stdout.read()
        # Waits for wrk's exit without reaping it, so its /proc entry still holds its CPU time.
        os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT)
        after = Snapshot.take(server.process.pid, other.process.pid, postgres_pid, process.pid)
        errors = process.stderr.read().decode()
        process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0 or not output.strip():
        raise RuntimeError(f"wrk failed ({process.returncode}): {errors.strip()}")
    result = msgspec.json.decode(output.strip().splitlines()[-1], type=WrkResult)
    return result, before, after


@dataclass
class Bench:
    args: argparse.Namespace
    workdir: Path
    secure: Server
    bare: Server
    postgres_pid: int
    operatives: list[Person]
    directory: Directory
    script: Path
    best_rate: dict[str, float] = field(default_factory=dict)
    phases: dict[str, list[Phase]] = field(default_factory=lambda: {"secure": [], "bare": []})

    def phase(
        self,
        endpoint: str,
        seconds: float,
        count: int,
        before_load: Callable[[Server], None] | None = None,
    ) -> Phase:
        server, other = (
            (self.secure, self.bare) if endpoint == "secure" else (self.bare, self.secure)
        )
        path = self.workdir / f"requests-{endpoint}.bin"
        if endpoint == "secure":
            cost = write_secure(path, count, server.port, self.operatives, self.directory)
        else:
            template, template_id = bare_template(server.port, self.operatives[0], self.directory)
            cost = write_bare(path, count, server.port, template, template_id)
        if before_load is not None:
            before_load(server)
        result, before, after = run_wrk(
            server, other, self.postgres_pid, self.script, path, self.args, seconds
        )
        path.unlink()
        phase = Phase(
            endpoint=endpoint,
            result=result,
            wall_s=after.at - before.at,
            cpu={k: after.cpu[k] - before.cpu[k] for k in PARTIES},
            machine=after.machine - before.machine,
            generate_us_per_request=cost,
        )
        self.best_rate[endpoint] = max(self.best_rate.get(endpoint, 0.0), phase.rate)
        return phase

    def sized(self, endpoint: str) -> int:
        rate = self.best_rate.get(endpoint, 1000.0)
        seconds: float = self.args.seconds
        needed = math.ceil(rate * seconds * SIZE_MARGIN) + 500
        limit: int = self.args.max_requests
        return min(limit, needed)

    def run(self) -> None:
        for endpoint in ("secure", "bare"):
            warm = self.phase(endpoint, self.args.warmup, self.args.max_requests // 4)
            print(f"warm-up {endpoint}: {warm.rate:,.0f} req/s, {warm.failed} failed", flush=True)
            if warm.failed:
                raise RuntimeError(f"warm-up {endpoint} failed: {warm.result.statuses}")
        for round_no in range(1, self.args.rounds + 1):
            for endpoint in ("secure", "bare"):
                phase = self.phase(endpoint, self.args.seconds, self.sized(endpoint))
                self.phases[endpoint].append(phase)
                print(
                    f"round {round_no} {endpoint}: {phase.rate:,.0f} req/s, "
                    f"p50 {phase.result.p50_us / 1e3:.1f} ms, p99 {phase.result.p99_us / 1e3:.1f}"
                    f" ms, {phase.failed} failed, server {phase.cores('server'):.2f} cores, "
                    f"machine {phase.machine / phase.wall_s:.2f}"
                    + (" (RAN OUT of requests)" if phase.result.exhausted else ""),
                    flush=True,
                )


# --- profile ------------------------------------------------------------------------------------

# Stacks that mark a step of the secure path (py-spy frame text: "function (file)").
STEPS = (
    ("permission guard: DPoP proof + session", "authorize (server/identity/guards.py)"),
    ("  DPoP proof check", "verify_proof (server/identity/dpop.py)"),
    ("  session lookup + jti insert", "authenticate (server/identity/service.py)"),
    ("strict JSON decode", "read_json (server/wire.py)"),
    ("reports.service.submit", "submit (server/reports/service.py)"),
    ("  device signature verify", "verify_device_signature (server/envelope/signatures.py)"),
    ("  age header check", "check_age_ciphertext (server/envelope/age_header.py)"),
    ("  audit row", "record (server/audit/service.py)"),
    ("  event publish", "publish (server/events/service.py)"),
    ("  key directory decode", "current_directory (server/keys/service.py)"),
    ("transaction(): BEGIN + RLS context", "transaction (server/db.py)"),
    ("edge middleware (request id, access log)", "(server/asgi.py)"),
    ("asyncpg (any frame)", "(asyncpg/"),
    ("litestar (any frame)", "(litestar/"),
    ("logging (any frame)", "(logging/"),
    ("audit sealer (background)", "(server/audit/sealer.py)"),
    ("event loop itself (no handler frame)", ""),
)


def summarize_profile(raw: Path, requests: int, label: str) -> str:
    stacks: list[tuple[list[str], int]] = []
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        # Only the event loop's thread: the idle threads of the argon2 executor (left from the
        # logins) are sampled too on a machine this busy, and do no work here.
        if stack and count.isdigit() and "BaseEventLoop.run_forever" in stack:
            stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks)
    if not total:
        return f"{label}: no samples"
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    for frames, n in stacks:
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n

    out = [
        f"{label}: {total} samples of the worker's event-loop thread running or runnable "
        f"({requests:,} requests answered in the profiled phase)",
        "",
        "| step (stack contains) | share of on-CPU samples |",
        "| --- | --- |",
    ]
    for name, marker in STEPS:
        if marker:
            hits = sum(n for frames, n in stacks if any(marker in f for f in frames))
        else:
            hits = sum(n for frames, n in stacks if not any("Handle._run" in f for f in frames))
        out.append(f"| {name} | {hits / total:.1%} |")
    out += ["", "| top functions, own time | share |", "| --- | --- |"]
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]:
        out.append(f"| {frame} | {n / total:.1%} |")
    out += ["", "| top functions, inclusive (below the event loop) | share |", "| --- | --- |"]
    shown = 0
    for frame, n in sorted(inclusive.items(), key=lambda kv: -kv[1]):
        if n / total > 0.9:
            continue
        out.append(f"| {frame} | {n / total:.1%} |")
        shown += 1
        if shown == 25:
            break
    return "\n".join(out)


def profile(bench: Bench, py_spy: str) -> str:
    """One more phase per endpoint with py-spy sampling the server's worker process."""
    reports = []
    for endpoint in ("secure", "bare"):
        raw = bench.workdir / f"profile-{endpoint}.txt"
        spies: list[subprocess.Popen[bytes]] = []

        def attach(server: Server, raw: Path = raw, spies: list[Any] = spies) -> None:
            workers = process_tree(server.process.pid)[1:]
            command = [
                *(py_spy, "record", "--pid", str(workers[0]), "--format", "raw"),
                *("--nolineno", "--rate", "250", "--output", str(raw)),
                *("--duration", str(math.ceil(bench.args.seconds) + 2)),
            ]
            spies.append(
                subprocess.Popen(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            time.sleep(1.0)  # attach before the load starts

        try:
            phase = bench.phase(endpoint, bench.args.seconds, bench.sized(endpoint), attach)
            for spy in spies:
                spy.wait(timeout=bench.args.seconds + 60)
        finally:
            for spy in spies:
                stop_process_tree(spy)
        reports.append(
            summarize_profile(raw, phase.ok, f"py-spy, {endpoint} ({phase.rate:,.0f} req/s)")
        )
    return "\n\n".join(reports)


# --- part 2: the queue at scale ------------------------------------------------------------------

BULK_INSERT = """
INSERT INTO tipline.reports (id, operative_id, device_id, sent_at, received_at,
                             directory_version, ciphertext, ciphertext_sha256, signature,
                             receipt, status, priority)
SELECT gen_random_uuid(), ($3::uuid[])[1 + g % cardinality($3::uuid[])],
       ($4::uuid[])[1 + g % cardinality($4::uuid[])],
       to_char((t - interval '90 seconds') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       t, 1, substring(decode(repeat(md5(g::text), 13), 'hex') FROM 1 FOR 200),
       md5(g::text) || md5((-g)::text), repeat('S', 86),
       md5((g + 1)::text) || md5((g + 2)::text),
       CASE WHEN g % 20 < 2 THEN 'new' WHEN g % 20 < 4 THEN 'in_review'
            WHEN g % 20 < 11 THEN 'verified' WHEN g % 20 < 16 THEN 'rejected'
            WHEN g % 20 < 18 THEN 'duplicate' ELSE 'needs_info' END,
       (g % 4)::smallint
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT now() - interval '1 hour' - make_interval(secs => g * 31.0) AS t) AS moment
"""

DEEP_ROW = """
SELECT received_at, id FROM tipline.reports
WHERE ($1::text IS NULL OR status = $1)
ORDER BY received_at DESC, id DESC OFFSET $2 LIMIT 1
"""


class Variant(msgspec.Struct, frozen=True):
    name: str
    status: str | None
    cursor: tuple[datetime, uuid.UUID] | None
    # Controls: the same probe against another path (no query behind it).
    fixed_path: str | None = None

    @property
    def path(self) -> str:
        if self.fixed_path:
            return self.fixed_path
        params = ["limit=50"]
        if self.status:
            params.append(f"status={self.status}")
        if self.cursor:
            params.append(f"cursor={encode_cursor(*self.cursor)}")
        return f"{REPORT_PATH}?{'&'.join(params)}"


@dataclass
class Listing:
    variant: Variant
    latencies: list[list[float]] = field(default_factory=list)
    failed: int = 0
    rows: set[int] = field(default_factory=set)


async def bulk_load(admin_url: str, rows: int, operatives: Sequence[Person]) -> tuple[int, float]:
    """Tops the table up to `rows` reports; returns rows added and seconds (load + analyze)."""
    started = time.monotonic()
    conn = await asyncpg.connect(admin_url)
    try:
        have: int = await conn.fetchval("SELECT count(*) FROM tipline.reports")
        accounts = [p.session.account.id for p in operatives if p.session]
        devices = [p.session.device_id for p in operatives if p.session]
        # The rows name real accounts and devices; skipping the per-row foreign-key triggers
        # (superuser only) is what keeps a million inserts inside the time budget.
        await conn.execute("SET session_replication_role = replica")
        chunk = 100_000
        for first in range(1, rows - have + 1, chunk):
            last = min(rows - have, first + chunk - 1)
            await conn.execute(BULK_INSERT, first, last, accounts, devices, timeout=600)
            print(f"  loaded {have + last:,} rows, {time.monotonic() - started:.0f} s", flush=True)
        await conn.execute("RESET session_replication_role")
        await conn.execute("VACUUM (ANALYZE) tipline.reports", timeout=600)
        total: int = await conn.fetchval("SELECT count(*) FROM tipline.reports")
    finally:
        await conn.close()
    print(f"  {total:,} rows after VACUUM ANALYZE, {time.monotonic() - started:.0f} s", flush=True)
    return max(0, rows - have), time.monotonic() - started


async def variants(admin_url: str, rows: int, deep_fraction: float) -> list[Variant]:
    conn = await asyncpg.connect(admin_url)
    try:
        in_review: int = await conn.fetchval(
            "SELECT count(*) FROM tipline.reports WHERE status = 'in_review'"
        )
        deep = await conn.fetchrow(DEEP_ROW, None, int(rows * deep_fraction))
        deep_review = await conn.fetchrow(DEEP_ROW, "in_review", int(in_review * deep_fraction))
    finally:
        await conn.close()
    return [
        Variant("first page", None, None),
        Variant("status=in_review", "in_review", None),
        Variant(f"deep page (row {int(rows * deep_fraction):,})", None, tuple(deep)),
        Variant(
            f"status=in_review, deep (row {int(in_review * deep_fraction):,} of {in_review:,})",
            "in_review",
            tuple(deep_review),
        ),
        Variant("control: GET /v1/me (session check, 1 row)", None, None, "/v1/me"),
        Variant("control: GET /healthz (no session, no database)", None, None, "/healthz"),
    ]


async def probe_listing(
    url: str, investigator: Person, listings: list[Listing], args: argparse.Namespace
) -> None:
    """Open loop at `--listing-rate`, variants interleaved, `--rounds` rounds each."""
    async with TiplineClient(url, investigator.device, timeout_s=LISTING_TIMEOUT_S) as client:

        async def one(listing: Listing, sink: list[float]) -> None:
            started = time.monotonic()
            try:
                response = await client.call("GET", listing.variant.path, investigator.token)
                if response.status_code == 200:
                    listing.rows.add(len(response.json().get("reports", [])))
                else:
                    listing.failed += 1
            except httpx.HTTPError:
                listing.failed += 1
            sink.append(time.monotonic() - started)

        for listing in listings:  # warm-up: connections, prepared statements, plan cache
            await asyncio.gather(*(one(listing, []) for _ in range(10)))
        for _ in range(args.rounds):
            for listing in listings:
                sink: list[float] = []
                tasks = []
                start = time.monotonic() + 0.01
                for i in range(round(args.listing_rate * args.listing_seconds)):
                    delay = start + i / args.listing_rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(listing, sink)))
                await asyncio.gather(*tasks)
                listing.latencies.append(sink)


def params(v: Variant) -> str:
    """EXECUTE arguments as literals (values this benchmark read from its own database)."""
    status = f"'{v.status}'" if v.status else "NULL"
    if v.cursor is None:
        return f"{status}, NULL, NULL, NULL, NULL, NULL, NULL, 50"
    moment, report_id = v.cursor
    return f"{status}, NULL, NULL, NULL, NULL, '{moment.isoformat()}', '{report_id}', 50"


async def explain(
    app_url: str, admin_url: str, investigator: Person, listings: list[Listing]
) -> list[str]:
    """The queue query's plans as the app gets them: prepared, under the investigator's RLS
    context, after the plan cache has seen every variant several times."""
    assert investigator.session is not None
    out: list[str] = []
    conn = await asyncpg.connect(app_url, server_settings={"search_path": db.SEARCH_PATH})
    try:
        async with conn.transaction():
            await conn.execute(
                query("context.set_account"),
                str(investigator.session.account.id),
                "investigator",
                "false",
            )
            await conn.execute(f"PREPARE bench_queue AS {query('reports.queue')}")

            listings = [x for x in listings if x.variant.fixed_path is None]
            for _ in range(3):
                for listing in listings:
                    await conn.execute(f"EXECUTE bench_queue({params(listing.variant)})")
            for mode in ("auto", "force_custom_plan"):
                await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
                for listing in listings:
                    plan = await conn.fetch(
                        f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_queue({params(listing.variant)})"
                    )
                    lines = [r[0] for r in plan]
                    generic = any("$" in line for line in lines)
                    nodes = [
                        ln.strip().removeprefix("->  ")
                        for ln in lines
                        if "(cost=" in ln or "Index Cond" in ln or "Time:" in ln
                    ]
                    out.append(
                        f"- {listing.variant.name}, plan_cache_mode={mode} "
                        f"({'generic' if generic else 'custom'} plan):"
                    )
                    out += [f"    {node}" for node in nodes]
    finally:
        await conn.close()
    # The same statement as superuser, who bypasses row-level security: what the planner
    # chooses when the policy's per-row condition is not there to misestimate.
    conn = await asyncpg.connect(admin_url, server_settings={"search_path": db.SEARCH_PATH})
    try:
        await conn.execute(f"PREPARE bench_queue AS {query('reports.queue')}")
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        for listing in listings:
            plan = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_queue({params(listing.variant)})"
            )
            out.append(f"- {listing.variant.name}, superuser (no RLS), custom plan:")
            out += [
                "    " + r[0].strip().removeprefix("->  ")
                for r in plan
                if "(cost=" in r[0] or "Time:" in r[0]
            ]
    finally:
        await conn.close()
    return out


# --- report --------------------------------------------------------------------------------------


def submissions_report(bench: Bench) -> str:
    secure, bare = bench.phases["secure"], bench.phases["bare"]
    ratios = [s.rate / b.rate for s, b in zip(secure, bare, strict=True)]
    out = [
        f"Submissions, POST {REPORT_PATH}: {len(secure)} rounds of secure then bare, "
        f"{bench.args.seconds:g} s each, wrk -t1 -c{bench.args.connections}",
        "",
        "| endpoint | req/s median (min..max) | p50 ms | p99 ms | failed (of sent) "
        "| server CPU us/req | wrk CPU us/req | making a request, us (untimed) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, phases in (("secure", secure), ("bare", bare)):
        failed = sum(p.failed for p in phases)
        sent = sum(p.result.requests for p in phases)
        out.append(
            f"| {name} | {span([p.rate for p in phases], ',.0f')} "
            f"| {span([p.result.p50_us / 1e3 for p in phases], '.1f')} "
            f"| {span([p.result.p99_us / 1e3 for p in phases], '.1f')} | {failed} of {sent} "
            f"| {span([p.us_per_request('server') for p in phases], ',.0f')} "
            f"| {span([p.us_per_request('wrk') for p in phases], '.0f')} "
            f"| {span([p.generate_us_per_request for p in phases], '.0f')} |"
        )
    verdict = "meets" if statistics.median(ratios) >= 0.6 else "MISSES"
    out += [
        "",
        f"secure / bare req/s, paired round by round: {span(ratios, '.2f')} "
        f"({verdict} the 0.6 target)",
        "",
        "What shared the cores during the timed phases (CPU seconds per wall second, median; "
        "1.00 = one core; `other server` = the idle one of the two; `other` = the rest of "
        "the machine)",
        "",
        "| endpoint | server | other server | postgres | wrk | bench | other | machine busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, phases in (("secure", secure), ("bare", bare)):
        cells = [f"{statistics.median([p.cores(k) for p in phases]):.2f}" for k in PARTIES]
        out.append(
            f"| {name} | {' | '.join(cells)} | {statistics.median([p.other for p in phases]):.2f}"
            f" | {statistics.median([p.machine / p.wall_s for p in phases]):.2f} |"
        )
    out += [
        "",
        "postgres CPU us/req: "
        + ", ".join(
            f"{name} {span([p.us_per_request('postgres') for p in phases], ',.0f')}"
            for name, phases in (("secure", secure), ("bare", bare))
        ),
    ]
    return "\n".join(out)


def listing_report(
    listings: Sequence[Listing],
    added: int,
    load_s: float,
    plans: list[str],
    args: argparse.Namespace,
) -> str:
    out = [
        f"Queue listing, GET {REPORT_PATH}?limit=50 as an investigator, {args.rows:,} reports "
        f"({added:,} bulk-loaded + VACUUM ANALYZE in {load_s:.0f} s), open loop "
        f"{args.listing_rate:g}/s, {args.rounds} rounds x {args.listing_seconds:g} s per query, "
        "latency measured by the client (httpx, fresh DPoP proof each)",
        "",
        "| query | p50 ms median (min..max) | p99 ms median (min..max) | p99 ms, all rounds "
        "| p99 < 50 ms | rows per page | failed (of sent) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for listing in listings:
        p50 = [percentile(r, 0.5) * 1e3 for r in listing.latencies]
        p99 = [percentile(r, 0.99) * 1e3 for r in listing.latencies]
        pooled = percentile([x for r in listing.latencies for x in r], 0.99) * 1e3
        sent = sum(len(r) for r in listing.latencies)
        out.append(
            f"| {listing.variant.name} | {span(p50, '.1f')} | {span(p99, '.1f')} "
            f"| {pooled:.1f} | {'yes' if pooled < 50 else 'NO'} "
            f"| {','.join(str(n) for n in sorted(listing.rows))} | {listing.failed} of {sent} |"
        )
    out += ["", "Plans (EXPLAIN (ANALYZE, BUFFERS) of the prepared queue query):", *plans]
    return "\n".join(out)


# --- driver --------------------------------------------------------------------------------------


def describe(args: argparse.Namespace, bench: Bench, body_bytes: int) -> str:
    return (
        f"servers: granian, TIPLINE_HTTP_WORKERS={args.workers}, pool max "
        f"{Settings().db_pool_max_size} each; PostgreSQL: embedded, default config; "
        f"{len(bench.operatives)} operatives, each its own session; secure body {body_bytes:,} "
        f"bytes (age ciphertext {len(bench.operatives[0].ciphertext):,} bytes to 1 "
        f"investigator); {machine_description()}"
    )


async def part_two(
    embedded: EmbeddedPostgres, secure: Server, investigator: Person, bench: Bench
) -> str:
    args = bench.args
    print(f"bulk-loading to {args.rows:,} reports", flush=True)
    added, load_s = await bulk_load(embedded.url(DB_NAME), args.rows, bench.operatives)
    listings = [
        Listing(v) for v in await variants(embedded.url(DB_NAME), args.rows, args.deep_fraction)
    ]
    await probe_listing(secure.url, investigator, listings, args)
    plans = await explain(
        embedded.url(DB_NAME, user=APP_ROLE), embedded.url(DB_NAME), investigator, listings
    )
    return listing_report(listings, added, load_s, plans, args)


def benchmark(args: argparse.Namespace) -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return run_in_lab("tipline-reports-bench-", lambda lab: _measure(lab, args))


def _measure(lab: Lab, args: argparse.Namespace) -> None:
    servers = lab.servers
    workdir = lab.workdir
    embedded = lab.start_postgres()
    asyncio.run(prepare_database(embedded, DB_NAME, BARE_TABLE))
    app_url = embedded.url(DB_NAME, user=APP_ROLE)
    generate_key_file(workdir / "secret.key")
    root_key = Ed25519PrivateKey.generate()
    env = _server_environment(app_url, workdir, public_key_b64(root_key), args.workers, {})
    code = first_invite_code(env)
    secure_port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(secure_port)]
    servers.append(_start("secure", secure_port, command, env, workdir))
    wait_ready(servers[0], ["/healthz"])
    investigator, operatives, directory = asyncio.run(
        set_up(servers[0].url, code, root_key, args.operatives)
    )
    first = operatives[0].session
    assert first is not None
    bare_env = _server_environment(
        app_url,
        workdir,
        public_key_b64(root_key),
        args.workers,
        {OPERATIVE_ENV: str(first.account.id), DEVICE_ENV: str(first.device_id)},
    )
    bare_port = free_port()
    command = [sys.executable, THIS_FILE, "--serve-bare", str(bare_port)]
    servers.append(_start("bare", bare_port, command, bare_env, workdir))
    wait_ready(servers[1], ["/healthz"])
    script = workdir / "replay.lua"
    script.write_text(WRK_SCRIPT)
    bench = Bench(
        args, workdir, servers[0], servers[1], embedded.pid, operatives, directory, script
    )
    body = len(secure_body(operatives[0], directory, uuid.uuid4()))
    print(describe(args, bench, body), flush=True)
    print(f"set up in {time.monotonic() - lab.started:.0f} s", flush=True)
    bench.run()
    print()
    print(submissions_report(bench), flush=True)
    print()
    if args.py_spy:
        print(profile(bench, args.py_spy), flush=True)
        print()
    stop_process_tree(servers[1].process)  # part 2 uses the secure server only
    if args.rows > 0:
        print(asyncio.run(part_two(embedded, servers[0], investigator, bench)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of a timed phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="one untimed phase each")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="TIPLINE_HTTP_WORKERS, both")
    parser.add_argument("--operatives", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=40_000, help="per phase file")
    parser.add_argument("--rows", type=int, default=1_000_000, help="0: skip part 2")
    parser.add_argument("--deep-fraction", type=float, default=0.9)
    parser.add_argument("--listing-rate", type=float, default=50.0)
    parser.add_argument("--listing-seconds", type=float, default=5.0)
    parser.add_argument(
        "--py-spy", metavar="PATH", help="py-spy binary: profile one more phase per endpoint"
    )
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare is not None:
        return serve_bare(args.serve_bare)
    unwind_on_sigterm()
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
