"""What every benchmark here does the same way: processes, /proc readings, set-up, formatting.

Each benchmark measures something different, but they must start, watch and stop servers and
read CPU time identically, or their figures could not be put side by side (PERFORMANCE.md).
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pyotp

from clients.reference_client.api import Session, TiplineClient
from server import migrations
from server.embedded import EmbeddedPostgres

HOST = "127.0.0.1"
# Children run with the repository as their working directory, so `python -m server.cli` and
# `python -m bench...` resolve whatever folder the benchmark was started from.
REPO_ROOT = str(Path(__file__).resolve().parent.parent)
INVESTIGATOR = "bench-investigator"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# High enough that the login and enrolment throttles never answer during a benchmark; the
# schema stores them as int4.
UNTHROTTLED = {
    "TIPLINE_SOURCE_ATTEMPTS_PER_WINDOW": "1000000",
    "TIPLINE_LOGIN_BACKOFF_AFTER": "1000000",
    "TIPLINE_LOGIN_HARD_LOCK_AFTER": "1000000",
}


# --- CPU time from /proc -------------------------------------------------------------------------


def process_tree(pid: int) -> list[int]:
    """`pid` first, then every descendant (granian's supervisor forks its workers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(p) for p in (task / "children").read_text().split())
            except OSError:
                continue
    return pids


def cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            # Ended between listing and reading: its time is no longer anyone's to count.
            continue
        # utime and stime are fields 14 and 15, i.e. 12 and 13 after the command name (which
        # may itself hold spaces and parentheses, hence the split at the last ")").
        fields = stat.rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    return cpu_seconds(process_tree(pid))


def machine_cpu_seconds() -> float:
    # First line of /proc/stat: user nice system idle iowait irq softirq steal, in ticks.
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- server processes ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_environment(app_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    # A stray TIPLINE_* or DATABASE_URL in the caller's shell must not change what is measured.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIPLINE_")}
    env.update(DATABASE_URL=app_url, TIPLINE_DATA_DIR=str(data_dir), **settings)
    return env


def start_server(
    name: str, port: int, command: Sequence[str], env: Mapping[str, str], log_path: Path
) -> Server:
    log = log_path.open("wb")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Its own process group: Ctrl-C reaches only the benchmark, which then stops the
        # servers before PostgreSQL, and a stuck server can be killed with all its workers.
        start_new_session=True,
    )
    return Server(name=name, port=port, process=process, log_path=log_path, log=log)


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(
    server: Server, paths: Sequence[str], timeout_s: float = 90.0, *, any_answer: bool = False
) -> None:
    """Until every path answers 200 (or, with `any_answer`, answers at all)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited:\n{tail(server.log_path)}")
            try:
                if all(_answers(client, f"{server.url}{path}", any_answer) for path in paths):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready in {timeout_s:.0f} s:\n{tail(server.log_path)}")


def _answers(client: httpx.Client, url: str, any_answer: bool) -> bool:
    status = client.get(url).status_code
    return any_answer or status == 200


def stop_process_tree(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            # start_new_session made it a group leader: this reaches its workers too.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def stop_server(server: Server, timeout_s: float = 20.0) -> None:
    stop_process_tree(server.process, timeout_s)
    server.log.close()


def unwind_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` stops the servers and PostgreSQL."""
    # A shell starts background jobs with SIGINT ignored; restore Python's handler so that
    # asyncio.run takes it over and SIGTERM has something to forward to.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _forward_as_sigint)


def _forward_as_sigint(signum: int, frame: object) -> None:
    # As Ctrl-C: inside asyncio.run that cancels the main task (so every `finally` runs in
    # order) instead of raising in whichever task happens to be running.
    os.kill(os.getpid(), signal.SIGINT)


# --- one run ------------------------------------------------------------------------------------


@dataclass
class Lab:
    """The temporary folder, embedded PostgreSQL and servers of one run."""

    workdir: Path
    embedded: EmbeddedPostgres | None = None
    servers: list[Server] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def start_postgres(self) -> EmbeddedPostgres:
        self.embedded = EmbeddedPostgres(self.workdir / "pgdata")
        return self.embedded

    def close(self, stop_timeout_s: float) -> None:
        # Servers before PostgreSQL: their pools' connections would hold its shutdown up.
        for server in self.servers:
            stop_server(server, stop_timeout_s)
        if self.embedded is not None:
            self.embedded.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def run_in_lab(prefix: str, body: Callable[[Lab], None], stop_timeout_s: float = 20.0) -> int:
    """Runs `body` in a fresh Lab and always tears it down: an interrupted benchmark must not
    leave servers or PostgreSQL loading the shared machine. Returns the exit status."""
    lab = Lab(Path(tempfile.mkdtemp(prefix=prefix)))
    try:
        body(lab)
        print(f"\ntotal {time.monotonic() - lab.started:.0f} s", flush=True)
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        lab.close(stop_timeout_s)


# --- the installation ----------------------------------------------------------------------------


async def prepare_database(
    embedded: EmbeddedPostgres, db_name: str, extra_sql: str | None = None
) -> None:
    """Creates and migrates `db_name`, then runs `extra_sql` as superuser if given."""
    await embedded.ensure_database(db_name)
    conn = await asyncpg.connect(embedded.url(db_name))
    try:
        await migrations.migrate(conn)
        if extra_sql is not None:
            await conn.execute(extra_sql)
    finally:
        await conn.close()


def first_invite_code(env: Mapping[str, str]) -> str:
    """The bootstrap invite, made as an operator would: `tipline admin` in a child process."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "server.cli", "admin", "create-first-investigator"),
            *("--handle", INVESTIGATOR),
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1]
    code: str = json.loads(line)["payload"]["code"]
    return code


async def enrol(client: TiplineClient, code: str, age_recipient: str) -> tuple[str, str]:
    """Enrols and confirms through the reference client; returns password and TOTP seed."""
    password = secrets.token_urlsafe(18)
    enrolment = await client.enrol(code, password, age_recipient)
    seed = parse_qs(urlsplit(enrolment.otpauth_uri).query)["secret"][0]
    # The previous step's code confirms, so the first login can use the current one.
    await client.confirm_enrolment(enrolment.account_id, pyotp.TOTP(seed).at(time.time() - 30))
    return password, seed


async def enrol_and_login(
    client: TiplineClient, code: str, handle: str, age_recipient: str
) -> Session:
    password, seed = await enrol(client, code, age_recipient)
    return await client.login(handle, password, pyotp.TOTP(seed).now())


# --- reporting -----------------------------------------------------------------------------------


def span(values: Sequence[float], fmt: str) -> str:
    """Median (min..max): how the project reports a figure measured over rounds."""
    median, low, high = (
        format(v, fmt) for v in (statistics.median(values), min(values), max(values))
    )
    return f"{median} ({low}..{high})"


def percentile(values: Sequence[float], q: float) -> float:
    # Nearest rank, no interpolation: a reported p99 is a latency some request really had.
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def machine_description() -> str:
    # The load average says how much of the shared machine other work took during the run.
    load = os.getloadavg()
    return (
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
