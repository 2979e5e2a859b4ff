"""Logins per second at Tipline's argon2 parameters, and `GET /v1/me` latency while they run.

Run from the repository root: `.venv/bin/python bench/login_load.py` (about 6 minutes; --help).

The identity issue asks for two figures: how many logins per second per core the argon2id
parameters (t=3, m=64 MiB, p=4, two verifications per login) allow, and whether `GET /v1/me`
p99 stays within 2x of its unloaded value while logins saturate the hashing limit.

One embedded PostgreSQL in a temporary folder, migrated and holding two accounts, serves one
`tipline serve` process per configuration (`--configs`), each on its own loopback port with
DATABASE_URL pointing at that PostgreSQL, so every configuration runs in the same run against
the same database. A configuration `cN` sets TIPLINE_PASSWORD_HASH_CONCURRENCY=N; `cN-nice` is
the same server with one change applied from outside the tree, the fix this benchmark proposes:
the threads that run argon2 drop to nice 19 (see `serve_niced`).

Per round, for each configuration in turn (order alternating round by round):

- unloaded: this process sends `GET /v1/me` (a real DPoP-bound session, a fresh proof per
  request, via the reference client) at a fixed rate, open loop, for `--seconds`;
- loaded: a separate load-generator process (this file, `--login-load`) keeps `--login-workers`
  wrong-password logins in flight against an existing handle, so the argon2 semaphore is full
  and has waiters; after `--warmup` s the same `/v1/me` probe runs for `--seconds`, then the
  generator stops and drains its in-flight logins before the next phase starts.

What a login costs here: the wrong password for an existing, active handle. The server runs
both argon2id verifications (the password, then the duress password's dummy of equal cost),
then records the failure and an audit row, and answers 401. A successful login costs the same
two verifications plus a few more statements; repeating one account's successful login would
need a fresh TOTP step (30 s) per login. To keep the load from turning into 429s, the servers
run with TIPLINE_SOURCE_ATTEMPTS_PER_WINDOW, TIPLINE_LOGIN_BACKOFF_AFTER and
TIPLINE_LOGIN_HARD_LOCK_AFTER raised to 1,000,000; everything else is the default.

CPU use of every party (server, PostgreSQL, load generator, probe, the rest of the machine) is
read from /proc for each phase, and the run-queue wait of the server's event-loop thread and of
the PostgreSQL backends from /proc/<pid>/task/<tid>/schedstat, which shows whether a slower
`/v1/me` came from waiting for a core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyrage
from litestar import Litestar

from bench._harness import (
    INVESTIGATOR,
    UNTHROTTLED,
    Lab,
    Server,
    cpu_seconds,
    enrol,
    enrol_and_login,
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
    tail,
    tree_cpu_seconds,
    unwind_on_sigterm,
    wait_ready,
)
from clients.reference_client.api import Session, TiplineClient
from clients.reference_client.device import DeviceKeyPair
from server.embedded import APP_ROLE
from server.identity.passwords import PARAMETERS
from server.keyring import generate_key_file

THIS_FILE = str(Path(__file__).resolve())
DB_NAME = "tipline_bench_login"
LOAD_TARGET = "bench-load-target"
WRONG_PASSWORD = "not the password of this account at all"  # noqa: S105  (the point of it)
CONFIG_PATTERN = re.compile(r"^c([1-9][0-9]?)(-nice)?$")
NICE_ARGON2 = 19
LOGIN_TIMEOUT_S = 60.0
# Bounds each phase: in-flight logins get this long to finish once the load stops, a probe
# request this long to answer (a slower one counts as a failure, at this latency).
LOGIN_DRAIN_S = 15.0
PROBE_TIMEOUT_S = 5.0
READY = "ready"
STOP = "stop"


# --- the proposed fix, applied from outside the tree -------------------------------------------


def _lower_priority() -> None:
    # Linux keeps the nice value per thread and a new thread inherits its creator's, so the
    # lane threads argon2 starts from this executor thread run at nice 19 too.
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE_ARGON2)


def _niced_executor(app: Litestar) -> None:
    # PasswordHasher runs argon2 on the loop's default executor (run_in_executor(None, ...)).
    executor = ThreadPoolExecutor(thread_name_prefix="argon2-niced", initializer=_lower_priority)
    asyncio.get_running_loop().set_default_executor(executor)


def serve_niced(port: int) -> int:
    """`tipline serve`, except that the default executor's threads run at nice 19."""
    from server import cli
    from server.app import create_app as original

    def create_app(settings: Any) -> Litestar:
        app = original(settings)
        app.on_startup.append(_niced_executor)
        return app

    # `serve` looks the factory up in its module at call time; everything else is unchanged.
    vars(cli)["create_app"] = create_app
    return cli.main(["serve", "--port", str(port)])


# --- login load (child process) ----------------------------------------------------------------


async def login_load(url: str, handle: str, workers: int, warmup_s: float, max_s: float) -> None:
    """Keeps `workers` logins in flight until "stop" on stdin, then prints what completed."""
    completions: list[tuple[float, int, float]] = []
    stopping = asyncio.Event()
    async with TiplineClient(url, DeviceKeyPair.generate(), timeout_s=LOGIN_TIMEOUT_S) as client:

        async def worker() -> None:
            while not stopping.is_set():
                started = time.monotonic()
                try:
                    status = (
                        await client.login_response(handle, WRONG_PASSWORD, "000000")
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                ended = time.monotonic()
                completions.append((ended, status, ended - started))

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        await asyncio.sleep(warmup_s)
        print(READY, flush=True)
        stop_line = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_line, timeout=max_s)
        stopping.set()
        # Draining the in-flight logins leaves the server idle for the next phase.
        _, pending = await asyncio.wait(tasks, timeout=LOGIN_DRAIN_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    print(json.dumps({"completions": completions}), flush=True)


# --- measurements (parent process) -------------------------------------------------------------


def _schedstat(pid: int, tid: int) -> tuple[float, float, int]:
    """Seconds on a core, seconds runnable but waiting for one, and times scheduled in."""
    try:
        run_ns, wait_ns, slices = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0, 0
    return int(run_ns) / 1e9, int(wait_ns) / 1e9, int(slices)


@dataclass
class Snapshot:
    at: float
    server: float
    postgres: float
    generator: float
    probe: float
    machine: float
    loop_thread: tuple[float, float, int]
    backends: dict[int, tuple[float, float, int]]

    @classmethod
    def take(
        cls, server_pid: int, loop_pid: int, postgres_pid: int, generator_pid: int | None
    ) -> Snapshot:
        return cls(
            at=time.monotonic(),
            server=tree_cpu_seconds(server_pid),
            postgres=tree_cpu_seconds(postgres_pid),
            generator=cpu_seconds([generator_pid]) if generator_pid else 0.0,
            probe=own_cpu_seconds(),
            machine=machine_cpu_seconds(),
            loop_thread=_schedstat(loop_pid, loop_pid),
            backends={pid: _schedstat(pid, pid) for pid in process_tree(postgres_pid)},
        )


@dataclass
class Phase:
    seconds: float
    probes: int
    probe_failed: int
    p50_ms: float
    p99_ms: float
    late_p99_ms: float
    cpu: dict[str, float]
    loop_wait_us_per_slice: float
    loop_on_cpu: float
    loop_waiting: float
    loop_cpu_us_per_probe: float
    backend_wait_us_per_slice: float
    logins: int = 0
    login_statuses: dict[int, int] = field(default_factory=dict)


def _delta(before: Snapshot, after: Snapshot) -> tuple[dict[str, float], tuple[float, ...]]:
    cpu = {
        "server": after.server - before.server,
        "postgres": after.postgres - before.postgres,
        "generator": after.generator - before.generator,
        "probe": after.probe - before.probe,
        "machine": after.machine - before.machine,
    }
    loop = tuple(a - b for a, b in zip(after.loop_thread, before.loop_thread, strict=True))
    # Only processes alive at both ends: a backend that ended in between has no delta.
    both = after.backends.keys() & before.backends.keys()
    backends = tuple(
        sum(after.backends[pid][i] - before.backends[pid][i] for pid in both) for i in range(3)
    )
    return cpu, (*loop, *backends)


async def probe_me(
    client: TiplineClient, session: Session, rate: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """Open loop: request i is due at start + i/rate whatever happened to the earlier ones.

    Latency runs from just before the proof is made to the response; lateness (how far behind
    its due time a request started) shows when this process itself was short of a core. Every
    request has a latency: a failed one its time to fail, one past PROBE_TIMEOUT_S that bound.
    """
    latencies: list[float] = []
    lateness: list[float] = []
    failed = 0

    async def one(due: float) -> None:
        nonlocal failed
        started = time.monotonic()
        lateness.append(started - due)
        try:
            response = await asyncio.wait_for(
                client.call("GET", "/v1/me", session), PROBE_TIMEOUT_S
            )
            failed += response.status_code != 200
        except (httpx.HTTPError, TimeoutError):
            failed += 1
        latencies.append(min(time.monotonic() - started, PROBE_TIMEOUT_S))

    start = time.monotonic() + 0.01
    tasks = []
    for i in range(round(rate * seconds)):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    return latencies, lateness, failed


@dataclass
class Target:
    server: Server
    concurrency: int
    niced: bool
    client: TiplineClient | None = None
    # `tipline serve` is granian: a supervising process and a forked worker whose main thread
    # runs the asyncio loop (its Rust I/O runs on tokio threads beside it).
    loop_pid: int = 0
    unloaded: list[Phase] = field(default_factory=list)
    loaded: list[Phase] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.server.name

    @property
    def url(self) -> str:
        return self.server.url


def start_target(name: str, app_url: str, workdir: Path) -> Target:
    match = CONFIG_PATTERN.match(name)
    if match is None:
        raise SystemExit(f"bad configuration {name!r}: expected cN or cN-nice")
    concurrency, niced = int(match.group(1)), match.group(2) is not None
    port = free_port()
    if niced:
        command = [sys.executable, THIS_FILE, "--serve-niced", str(port)]
    else:
        command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    env = _server_environment(app_url, workdir, concurrency)
    server = start_server(name, port, command, env, workdir / f"server-{name}.log")
    return Target(server, concurrency, niced)


def _server_environment(app_url: str, workdir: Path, concurrency: int = 4) -> dict[str, str]:
    return server_environment(
        app_url, workdir, **UNTHROTTLED, TIPLINE_PASSWORD_HASH_CONCURRENCY=str(concurrency)
    )


def wait_for_target(target: Target) -> None:
    wait_ready(target.server, ["/readyz"])
    workers = process_tree(target.server.process.pid)[1:]
    target.loop_pid = workers[0] if workers else target.server.process.pid


async def set_up_accounts(url: str, code: str, device: DeviceKeyPair) -> Session:
    """The probe's investigator, logged in, and the operative whose handle the load hits."""
    async with TiplineClient(url, device) as client:
        session = await enrol_and_login(client, code, INVESTIGATOR, _new_age_recipient())
        invite = await client.invite(session, "operative", LOAD_TARGET)
    async with TiplineClient(url, DeviceKeyPair.generate()) as target:
        await enrol(target, invite.code, _new_age_recipient())
    return session


def _new_age_recipient() -> str:
    return str(pyrage.x25519.Identity.generate().to_public())


def _phase(
    before: Snapshot,
    after: Snapshot,
    latencies: list[float],
    lateness: list[float],
    failed: int,
) -> Phase:
    cpu, sched = _delta(before, after)
    loop_run, loop_wait, loop_slices, _, pg_wait, pg_slices = sched
    probes = len(latencies)
    return Phase(
        seconds=after.at - before.at,
        probes=probes,
        probe_failed=failed,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        late_p99_ms=percentile(lateness, 0.99) * 1e3,
        cpu=cpu,
        loop_wait_us_per_slice=loop_wait / max(1, loop_slices) * 1e6,
        loop_on_cpu=loop_run / (after.at - before.at),
        loop_waiting=loop_wait / (after.at - before.at),
        loop_cpu_us_per_probe=loop_run / max(1, probes) * 1e6,
        backend_wait_us_per_slice=pg_wait / max(1, pg_slices) * 1e6,
    )


async def settle(target: Target, idle_cores: float = 0.1, limit_s: float = 30.0) -> None:
    """Waits until the server is idle: probes that timed out or logins still queued from the
    previous phase would otherwise be measured as the unloaded value."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(target.server.process.pid)
        await asyncio.sleep(1.0)
        if tree_cpu_seconds(target.server.process.pid) - before < idle_cores:
            return


def check_alive(target: Target) -> None:
    # A worker that died (e.g. killed for memory: each running hash holds 64 MiB) leaves a
    # server that accepts connections and answers nothing; that is a failed run, not a figure.
    if target.server.process.poll() is not None or not Path(f"/proc/{target.loop_pid}").exists():
        raise RuntimeError(
            f"{target.name}: the server's worker process is gone:\n{tail(target.server.log_path)}"
        )


async def measure_unloaded(
    target: Target, session: Session, postgres_pid: int, args: argparse.Namespace
) -> Phase:
    assert target.client is not None
    check_alive(target)
    await settle(target)
    before = Snapshot.take(target.server.process.pid, target.loop_pid, postgres_pid, None)
    latencies, lateness, failed = await probe_me(target.client, session, args.rate, args.seconds)
    after = Snapshot.take(target.server.process.pid, target.loop_pid, postgres_pid, None)
    return _phase(before, after, latencies, lateness, failed)


async def measure_loaded(
    target: Target, session: Session, postgres_pid: int, args: argparse.Namespace
) -> Phase:
    assert target.client is not None
    generator = await asyncio.create_subprocess_exec(
        *(sys.executable, THIS_FILE, "--login-load", target.url),
        *("--login-workers", str(args.login_workers), "--warmup", str(args.warmup)),
        *("--max-seconds", str(args.seconds + 60)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert generator.stdin is not None
        assert generator.stdout is not None
        line = await asyncio.wait_for(generator.stdout.readline(), 60)
        if line.decode().strip() != READY:
            raise RuntimeError(f"login load did not start: {line!r}")
        before = Snapshot.take(
            target.server.process.pid, target.loop_pid, postgres_pid, generator.pid
        )
        latencies, lateness, failed = await probe_me(
            target.client, session, args.rate, args.seconds
        )
        after = Snapshot.take(
            target.server.process.pid, target.loop_pid, postgres_pid, generator.pid
        )
        generator.stdin.write(f"{STOP}\n".encode())
        await generator.stdin.drain()
        output = await asyncio.wait_for(generator.stdout.read(), LOGIN_DRAIN_S + 30)
        await asyncio.wait_for(generator.wait(), 10)
    finally:
        if generator.returncode is None:
            generator.kill()
            await generator.wait()
    check_alive(target)
    phase = _phase(before, after, latencies, lateness, failed)
    completions = json.loads(output.decode().strip().splitlines()[-1])["completions"]
    in_window = [c for c in completions if before.at <= c[0] <= after.at]
    phase.logins = len(in_window)
    for _, status, _ in in_window:
        phase.login_statuses[status] = phase.login_statuses.get(status, 0) + 1
    return phase


# --- report ------------------------------------------------------------------------------------


def _per_s(phases: Sequence[Phase], key: str) -> list[float]:
    return [p.cpu[key] / p.seconds for p in phases]


def report(targets: Sequence[Target], cores: int) -> str:
    out = [
        f"Login throughput (wrong password, existing handle: 2 argon2id verifications each, "
        f"{cores} cores on the machine)",
        "",
        "| config | logins/s | logins/s per core (/ "
        f"{cores}) | server CPU, cores busy | logins per server CPU-s | login answers |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for t in targets:
        rates = [p.logins / p.seconds for p in t.loaded]
        per_cpu = [p.logins / p.cpu["server"] for p in t.loaded]
        statuses: dict[int, int] = {}
        for p in t.loaded:
            for status, count in p.login_statuses.items():
                statuses[status] = statuses.get(status, 0) + count
        answers = ", ".join(f"{n} x {s or 'error'}" for s, n in sorted(statuses.items()))
        out.append(
            f"| {t.name} | {span(rates, '.2f')} | {span([r / cores for r in rates], '.2f')} "
            f"| {span(_per_s(t.loaded, 'server'), '.2f')} | {span(per_cpu, '.2f')} "
            f"| {answers} |"
        )
    out += [
        "",
        "GET /v1/me latency, ms (open loop; p99 ratio paired round by round; a request that "
        f"failed or took over {PROBE_TIMEOUT_S:g} s counts at its time, at most "
        f"{PROBE_TIMEOUT_S:g} s)",
        "",
        "| config | p50 unloaded | p99 unloaded | p50 loaded | p99 loaded "
        "| p99 loaded / unloaded | within 2x | failed (of sent) | probe late p99, loaded |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in targets:
        ratios = [b.p99_ms / a.p99_ms for a, b in zip(t.unloaded, t.loaded, strict=True)]
        failures = sum(p.probe_failed for p in (*t.unloaded, *t.loaded))
        sent = sum(p.probes for p in (*t.unloaded, *t.loaded))
        out.append(
            f"| {t.name} | {span([p.p50_ms for p in t.unloaded], '.1f')} "
            f"| {span([p.p99_ms for p in t.unloaded], '.1f')} "
            f"| {span([p.p50_ms for p in t.loaded], '.1f')} "
            f"| {span([p.p99_ms for p in t.loaded], '.1f')} | {span(ratios, '.2f')} "
            f"| {'yes' if statistics.median(ratios) <= 2 else 'NO'} | {failures} of {sent} "
            f"| {span([p.late_p99_ms for p in t.loaded], '.1f')} |"
        )
    out += [
        "",
        "What shared the cores (CPU seconds per wall second, median of rounds; 1.00 = one core). "
        "`other` = the machine minus the four columns before it (other tipline servers, "
        "the rest of the host).",
        "",
        "| config | phase | server | postgres | login generator | probe | other | machine busy |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    parts = ("server", "postgres", "generator", "probe")
    for t in targets:
        for label, phases in (("unloaded", t.unloaded), ("loaded", t.loaded)):
            cells = [f"{statistics.median(_per_s(phases, k)):.2f}" for k in parts]
            other = [
                max(0.0, p.cpu["machine"] - sum(p.cpu[k] for k in parts)) / p.seconds
                for p in phases
            ]
            out.append(
                f"| {t.name} | {label} | {' | '.join(cells)} | {statistics.median(other):.2f} "
                f"| {statistics.median(_per_s(phases, 'machine')):.2f} |"
            )
    out += [
        "",
        "Why (from /proc schedstat of the server's event-loop thread and of every PostgreSQL "
        "process): on a core and runnable-but-waiting, in cores (seconds per wall second); "
        "wait per time scheduled in, in us",
        "",
        "| config | phase | loop thread on CPU | loop thread waiting | loop wait us/slice "
        "| loop CPU us per /me | PostgreSQL wait us/slice |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in targets:
        for label, phases in (("unloaded", t.unloaded), ("loaded", t.loaded)):
            out.append(
                f"| {t.name} | {label} | {span([p.loop_on_cpu for p in phases], '.3f')} "
                f"| {span([p.loop_waiting for p in phases], '.3f')} "
                f"| {span([p.loop_wait_us_per_slice for p in phases], '.0f')} "
                f"| {span([p.loop_cpu_us_per_probe for p in phases], '.0f')} "
                f"| {span([p.backend_wait_us_per_slice for p in phases], '.0f')} |"
            )
    return "\n".join(out)


# --- driver ------------------------------------------------------------------------------------


async def run_rounds(
    targets: list[Target], session: Session, postgres_pid: int, args: argparse.Namespace
) -> None:
    for round_no in range(1, args.rounds + 1):
        order = targets if round_no % 2 else list(reversed(targets))
        for target in order:
            unloaded = await measure_unloaded(target, session, postgres_pid, args)
            loaded = await measure_loaded(target, session, postgres_pid, args)
            target.unloaded.append(unloaded)
            target.loaded.append(loaded)
            print(
                f"round {round_no} {target.name}: /v1/me p99 {unloaded.p99_ms:.1f} -> "
                f"{loaded.p99_ms:.1f} ms, {loaded.logins / loaded.seconds:.2f} logins/s, "
                f"server {loaded.cpu['server'] / loaded.seconds:.2f} cores, "
                f"machine {loaded.cpu['machine'] / loaded.seconds:.2f}",
                flush=True,
            )


async def drive(
    targets: list[Target], code: str, postgres_pid: int, args: argparse.Namespace
) -> None:
    device = DeviceKeyPair.generate()
    session = await set_up_accounts(targets[0].url, code, device)
    # One session, one device key: a proof names the URL it is sent to, so each server
    # gets its own client, but the session lives in the shared database.
    clients = [TiplineClient(target.url, device) for target in targets]
    for target, client in zip(targets, clients, strict=True):
        target.client = client
    try:
        for client in clients:  # warm-up: connections, prepared statements
            await probe_me(client, session, args.rate, 1.0)
        await run_rounds(targets, session, postgres_pid, args)
    finally:
        for client in clients:
            await client.__aexit__()


def describe(args: argparse.Namespace, targets: Sequence[Target]) -> str:
    parameters = (
        f"argon2id t={PARAMETERS.time_cost} m={PARAMETERS.memory_cost // 1024} MiB "
        f"p={PARAMETERS.parallelism}"
    )
    configs = "; ".join(
        f"{t.name} = TIPLINE_PASSWORD_HASH_CONCURRENCY={t.concurrency}"
        + (" + argon2 threads at nice 19" if t.niced else "")
        for t in targets
    )
    processes = len(process_tree(targets[0].server.process.pid))
    return (
        f"{parameters}; {configs}; TIPLINE_PASSWORD_HASH_MAX_WAITING=32 (default)\n"
        f"each server: `tipline serve`, {processes} processes (loop thread = pid "
        f"{targets[0].loop_pid} for {targets[0].name}), DATABASE_URL = one shared embedded "
        "PostgreSQL\n"
        f"{args.rounds} rounds x (unloaded {args.seconds:g} s, loaded {args.warmup:g} s warm-up "
        f"+ {args.seconds:g} s), /v1/me at {args.rate:g}/s open loop, "
        f"{args.login_workers} logins in flight; {machine_description()}"
    )


def benchmark(args: argparse.Namespace) -> int:
    return run_in_lab("tipline-login-bench-", lambda lab: _measure(lab, args))


def _measure(lab: Lab, args: argparse.Namespace) -> None:
    embedded = lab.start_postgres()
    asyncio.run(prepare_database(embedded, DB_NAME))
    app_url = embedded.url(DB_NAME, user=APP_ROLE)
    generate_key_file(lab.workdir / "secret.key")
    code = first_invite_code(_server_environment(app_url, lab.workdir))
    targets: list[Target] = []
    for name in args.configs:
        targets.append(start_target(name, app_url, lab.workdir))
        lab.servers.append(targets[-1].server)
    for target in targets:
        wait_for_target(target)
    print(describe(args, targets), flush=True)
    asyncio.run(drive(targets, code, embedded.pid, args))
    print()
    print(report(targets, os.cpu_count() or 1))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--configs", nargs="+", default=["c4", "c1", "c4-nice"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=12.0, help="length of each probe")
    parser.add_argument("--warmup", type=float, default=3.0, help="login load before probing")
    parser.add_argument("--rate", type=float, default=50.0, help="/v1/me requests per second")
    parser.add_argument("--login-workers", type=int, default=8, help="logins kept in flight")
    parser.add_argument("--login-load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=120.0, help=argparse.SUPPRESS)
    parser.add_argument("--serve-niced", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_niced is not None:
        return serve_niced(args.serve_niced)
    if args.login_load is not None:
        asyncio.run(
            login_load(
                args.login_load, LOAD_TARGET, args.login_workers, args.warmup, args.max_seconds
            )
        )
        return 0
    unwind_on_sigterm()
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
