"""Which ASGI server should carry Tipline: uvicorn or granian, measured on the real app.

Run from the repository root: `.venv/bin/python bench/asgi_servers.py` (about 4.5 minutes).

Each server runs the app from `server.app.create_app` in its own process on a free loopback
port, against one embedded PostgreSQL; `wrk` loads `GET /healthz` (no database) and
`GET /readyz` (one round trip) for each server in turn, A B C A B C, and the table reports the
median of the rounds with min..max, and each server's ratio to uvicorn paired round by round.
The 2 cores are shared by wrk, the server, PostgreSQL and whatever else the host runs, so the
CPU each used during the runs is printed too (PERFORMANCE.md: ratios within one run).

`--serve NAME --port N` is the server side, started by the benchmark itself with DATABASE_URL
in its environment.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from litestar import Litestar

from bench._harness import (
    HOST,
    Lab,
    Server,
    free_port,
    machine_cpu_seconds,
    prepare_database,
    run_in_lab,
    span,
    start_server,
    tree_cpu_seconds,
    wait_ready,
)
from server.app import create_app
from server.embedded import APP_ROLE
from server.keyring import generate_key_file
from server.logs import configure_logging
from server.settings import Settings, load_settings

DB_NAME = "tipline_bench"
ENDPOINTS = ("/healthz", "/readyz")
SERVERS = ("uvicorn", "granian", "granian-embed")

# The same event loop for every server, so the table compares servers, not loops.
LOOP: Literal["uvloop", "asyncio"] = (
    "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
)
UVICORN_HTTP: Literal["httptools", "h11"] = (
    "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
)


def bench_settings(database_url: str, data_dir: str) -> Settings:
    # Only these two are taken from outside, so a stray TIPLINE_* variable in the caller's
    # shell cannot change what is measured.
    return load_settings({}, database_url=database_url, data_dir=data_dir)


def app_from_environment() -> Litestar:
    """The app factory each server process imports; the parent sets both variables."""
    return create_app(bench_settings(os.environ["DATABASE_URL"], os.environ["TIPLINE_DATA_DIR"]))


# --- server side (child process) -----------------------------------------------------------


def _serve_uvicorn(port: int) -> None:
    import uvicorn

    # The options `tipline serve` passes (server/cli.py), plus an explicit loop and parser.
    config = uvicorn.Config(
        app_from_environment(),
        host=HOST,
        port=port,
        loop=LOOP,
        http=UVICORN_HTTP,
        workers=1,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        lifespan="on",
    )
    uvicorn.Server(config).run()


def _serve_granian(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    # Granian.serve() keeps a supervising main process and forks the worker, which imports
    # the app by name; runtime_mode stays "auto" (= "mt" for ASGI), runtime_threads=1.
    server = Granian(
        "bench.asgi_servers:app_from_environment",
        address=HOST,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        loop=Loops(LOOP),
        log_access=False,
    )
    server.serve()


async def _serve_granian_embedded(port: int) -> None:
    from granian.constants import Interfaces
    from granian.server.embed import Server

    # The embed API runs the app on this process's own event loop (no fork); signals are ours.
    server = Server(app_from_environment(), address=HOST, port=port, interface=Interfaces.ASGI)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    if LOOP == "uvloop":
        # Imported by name: uvloop is optional here and ships no stubs for this mypy run.
        factory: Callable[[], asyncio.AbstractEventLoop]
        factory = importlib.import_module("uvloop").new_event_loop
        return factory
    return asyncio.new_event_loop


def serve(name: str, port: int) -> None:
    # As `tipline serve` does: JSON logs at INFO, so each request writes its access-log line.
    configure_logging("INFO")
    if name == "uvicorn":
        _serve_uvicorn(port)
    elif name == "granian":
        _serve_granian(port)
    elif name == "granian-embed":
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve_granian_embedded(port))
    else:
        raise SystemExit(f"unknown server {name!r}")


# --- load side (parent process) ------------------------------------------------------------


@dataclass
class Run:
    requests_per_s: float
    p99_ms: float
    bad_responses: int
    server_cpu_s: float
    wrk_cpu_s: float
    postgres_cpu_s: float
    machine_cpu_s: float
    seconds: float


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> tuple[float, float, int]:
    """Requests/s, p99 in ms, and non-2xx/3xx responses plus socket errors."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if rps is None or p99 is None:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if errors is not None:
        bad += sum(int(n) for n in errors.groups())
    return float(rps.group(1)), float(p99.group(1)) * _UNIT_MS[p99.group(2)], bad


def run_wrk(url: str, seconds: int, connections: int, server_pid: int, postgres_pid: int) -> Run:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    server_before = tree_cpu_seconds(server_pid)
    postgres_before = tree_cpu_seconds(postgres_pid)
    wrk_before = _children_cpu_seconds()
    machine_before = machine_cpu_seconds()
    started = time.monotonic()
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    elapsed = time.monotonic() - started
    rps, p99, bad = parse_wrk(done.stdout)
    return Run(
        requests_per_s=rps,
        p99_ms=p99,
        bad_responses=bad,
        server_cpu_s=tree_cpu_seconds(server_pid) - server_before,
        wrk_cpu_s=_children_cpu_seconds() - wrk_before,
        postgres_cpu_s=tree_cpu_seconds(postgres_pid) - postgres_before,
        machine_cpu_s=machine_cpu_seconds() - machine_before,
        seconds=elapsed,
    )


def start_serving(name: str, settings: Settings, workdir: Path) -> Server:
    port = free_port()
    return start_server(
        name,
        port,
        [sys.executable, "-m", "bench.asgi_servers", "--serve", name, "--port", str(port)],
        {
            **os.environ,
            "DATABASE_URL": str(settings.database_url),
            "TIPLINE_DATA_DIR": str(settings.data_dir),
        },
        workdir / f"{name}.log",
    )


def report(results: dict[tuple[str, str], Series], servers: Sequence[str]) -> str:
    baseline = servers[0]
    out = [
        f"| endpoint | server | req/s median (min..max) | p99 ms median (min..max) "
        f"| req/s ratio to {baseline}, paired rounds | server CPU us/req |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for endpoint in ENDPOINTS:
        base = results[endpoint, baseline].runs
        for name in servers:
            runs = results[endpoint, name].runs
            ratios = [r.requests_per_s / b.requests_per_s for r, b in zip(runs, base, strict=True)]
            ratio = "1" if name == baseline else span(ratios, ".2f")
            per_request = [r.server_cpu_s / (r.requests_per_s * r.seconds) * 1e6 for r in runs]
            bad = sum(r.bad_responses for r in runs)
            flag = f" ({bad} failed)" if bad else ""
            out.append(
                f"| {endpoint} | {name}{flag} | {span([r.requests_per_s for r in runs], ',.0f')} "
                f"| {span([r.p99_ms for r in runs], '.1f')} | {ratio} "
                f"| {statistics.median(per_request):.0f} |"
            )
    out += [
        "",
        f"What shared the {os.cpu_count()} cores during the runs (CPU seconds per wall second, "
        "median of the runs; 1.00 = one core busy). `other` is every other process on the "
        "machine (the rest of the shared host's work).",
        "",
        "| endpoint | server | server | wrk | postgres | other | machine busy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for endpoint in ENDPOINTS:
        for name in servers:
            runs = results[endpoint, name].runs

            def share(pick: Callable[[Run], float], runs: list[Run] = runs) -> str:
                return f"{statistics.median(pick(r) / r.seconds for r in runs):.2f}"

            out.append(
                f"| {endpoint} | {name} | {share(lambda r: r.server_cpu_s)} "
                f"| {share(lambda r: r.wrk_cpu_s)} | {share(lambda r: r.postgres_cpu_s)} "
                f"| {share(_other_cpu_s)} | {share(lambda r: r.machine_cpu_s)} |"
            )
    return "\n".join(out)


def _other_cpu_s(run: Run) -> float:
    return max(0.0, run.machine_cpu_s - run.server_cpu_s - run.wrk_cpu_s - run.postgres_cpu_s)


def describe_servers() -> str:
    import granian
    import uvicorn

    return (
        f"uvicorn {uvicorn.__version__}: uvicorn.Server(config).run(), 1 process, "
        f"loop={LOOP}, http={UVICORN_HTTP}\n"
        f"granian {granian.__version__}: Granian(...).serve(), interface=asgi, workers=1 "
        f"(supervisor + 1 forked worker), loop={LOOP}, runtime_mode=auto (mt for ASGI), "
        f"runtime_threads=1, task_impl=asyncio, http=auto\n"
        f"granian-embed: granian.server.embed.Server(app).serve() on this process's "
        f"{LOOP} loop, interface=asgi, runtime_threads=1"
    )


def benchmark(args: argparse.Namespace) -> int:
    return run_in_lab("tipline-bench-", lambda lab: _compare(lab, args), stop_timeout_s=15.0)


def _compare(lab: Lab, args: argparse.Namespace) -> None:
    servers: list[str] = args.servers
    embedded = lab.start_postgres()
    asyncio.run(prepare_database(embedded, DB_NAME))
    settings = bench_settings(embedded.url(DB_NAME, user=APP_ROLE), str(lab.workdir))
    generate_key_file(settings.secret_key_path)
    running = lab.servers
    for name in servers:
        running.append(start_serving(name, settings, lab.workdir))
    for server in running:
        wait_ready(server, ENDPOINTS, 60.0)
    print(describe_servers(), flush=True)
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s --latency, {args.rounds} rounds, "
        f"order {' '.join(servers)} per endpoint per round",
        flush=True,
    )

    def load(server: Server, endpoint: str, seconds: int) -> Run:
        url = f"{server.url}{endpoint}"
        return run_wrk(url, seconds, args.connections, server.process.pid, embedded.pid)

    for endpoint in ENDPOINTS:
        for server in running:
            load(server, endpoint, args.warmup)

    results = {(e, s.name): Series() for e in ENDPOINTS for s in running}
    for round_no in range(1, args.rounds + 1):
        for endpoint in ENDPOINTS:
            for server in running:
                run = load(server, endpoint, args.seconds)
                results[endpoint, server.name].runs.append(run)
                print(
                    f"round {round_no} {endpoint} {server.name}: "
                    f"{run.requests_per_s:,.0f} req/s, p99 {run.p99_ms:.1f} ms"
                    + (f", {run.bad_responses} failed" if run.bad_responses else ""),
                    flush=True,
                )
    print()
    print(report(results, servers))


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--servers", nargs="+", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8, help="length of one wrk run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds per server and endpoint")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.port)
        return 0
    # SIGTERM must unwind like Ctrl-C so the `finally` stops the servers and PostgreSQL.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    return benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
