"""The real `tipline serve` process on the embedded database, driven over HTTP."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, private_dir
from tests.e2e.serving import BIN, START_TIMEOUT_S, Served, postgres_processes


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

    # What the production HTTP server itself sends: no banner, the fixed headers, problem+json.
    missing = httpx.get(f"{first.url}/no-such-route", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    # granian always names itself and cannot be told not to (granian issue #594); it gives no
    # version. The TLS proxy in deploy/ strips the header at the edge.
    assert missing.headers.get("server", "granian") == "granian"
    assert missing.headers["x-content-type-options"] == "nosniff"

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
    assert f"serving http://127.0.0.1:{first.port}" in stdout
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
