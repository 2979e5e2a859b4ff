"""The real `tipline serve` process on the embedded database, driven over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port, private_dir

BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(proc)
    return found


class Served:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["TIPLINE_DATA_DIR"] = str(data_dir)
        self.process = subprocess.Popen(
            [BIN / "tipline", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < START_TIMEOUT_S:
            if self.process.poll() is not None:
                raise AssertionError(f"tipline serve exited early: {self.process.stderr.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"/readyz not 200 within {START_TIMEOUT_S}s")

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        stdout, stderr = self.process.communicate(timeout=30)
        return self.process.returncode, stdout, stderr


@pytest.fixture
def data_dir() -> Iterator[Path]:
    folder = private_dir("serve")
    yield folder / "var"
    # Never leave a server behind, whatever the test did.
    for proc in postgres_processes(folder / "var" / "pgdata"):
        proc.kill()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_on_embedded_postgres_stops_cleanly_and_restarts(
    data_dir: Path, stop_signal: int
) -> None:
    pgdata = data_dir / "pgdata"
    first = Served(data_dir)
    assert first.wait_ready() < START_TIMEOUT_S
    assert postgres_processes(pgdata), "the embedded PostgreSQL should be running"

    client = subprocess.run(
        [BIN / "tipline-client", "--server", first.url, "readyz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (client.returncode, client.stdout.strip()) == (0, "ready")

    code, stdout, stderr = first.stop(stop_signal)
    assert code == 0, stderr
    assert f"listening on http://127.0.0.1:{first.port}" in stdout
    assert postgres_processes(pgdata) == [], "stopping serve must stop its PostgreSQL"
    assert all(line.startswith("{") for line in stderr.splitlines()), "logs are JSON lines"

    # The second start reuses the cluster and its migrated database.
    second = Served(data_dir)
    second.wait_ready()
    code, _, stderr = second.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert postgres_processes(pgdata) == []


def test_a_bad_setting_stops_start_up_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [BIN / "tipline", "serve"],
        env={**os.environ, "TIPLINE_PORT": "not-a-port", "TIPLINE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tipline: error: TIPLINE_PORT: expected `int`, got `str`"
    ]
    assert not (tmp_path / "pgdata").exists(), "nothing is started on a bad setting"


def test_client_reports_an_unreachable_server() -> None:
    result = subprocess.run(
        [BIN / "tipline-client", "--server", f"http://127.0.0.1:{free_port()}", "readyz"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
