"""The real `tipline serve` process, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.conftest import free_port

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
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["TIPLINE_DATA_DIR"] = str(self.data_dir)
        return subprocess.Popen(
            [BIN / "tipline", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def restart(self) -> None:
        """Stops the service (SIGTERM) and starts it again on the same data and port."""
        returncode, _, stderr = self.stop(signal.SIGTERM)
        assert returncode == 0, stderr
        self.process = self._start()
        self.wait_ready()

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
