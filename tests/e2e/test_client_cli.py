"""The reference client's command line against the real server process: enrol, log in, ask
who am I, log out. Secrets go in on standard input, as a person would type them."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import msgspec
import pyotp
import pytest

from tests.conftest import private_dir
from tests.e2e.serving import BIN, Served, postgres_processes


@pytest.fixture
def served() -> Iterator[Served]:
    folder = private_dir("client-cli")
    server = Served(folder / "var")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop(signal.SIGTERM)
        for proc in postgres_processes(folder / "var" / "pgdata"):
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


def client(
    served: Served, profile: Path, *args: str, stdin: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "tipline-client", "--server", served.url, "--profile", str(profile), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_enrol_login_whoami_logout(served: Served, tmp_path: Path) -> None:
    bootstrap = subprocess.run(
        [BIN / "tipline", "admin", "create-first-investigator", "--handle", "director"],
        env={**os.environ, "TIPLINE_DATA_DIR": str(served.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    invite = msgspec.json.decode(bootstrap.stdout.strip().splitlines()[-1])
    code = invite["payload"]["code"]

    profile = tmp_path / "profile.age"
    password = secrets.token_urlsafe(18)
    passphrase = secrets.token_urlsafe(12)
    enrol = subprocess.Popen(
        [
            BIN / "tipline-client",
            "--server",
            served.url,
            "--profile",
            str(profile),
            "enrol",
            "--code",
            code,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert enrol.stdin is not None
    assert enrol.stdout is not None
    enrol.stdin.write(f"{password}\n{password}\n")
    enrol.stdin.flush()
    uri = ""
    deadline = time.monotonic() + 60
    while not uri.startswith("otpauth://") and time.monotonic() < deadline:
        uri = enrol.stdout.readline().strip()
    seed = parse_qs(urlsplit(uri).query)["secret"][0]
    totp = pyotp.TOTP(seed)
    rest, errors = enrol.communicate(
        input=f"{totp.at(time.time() - 30)}\n{passphrase}\n{passphrase}\n", timeout=120
    )
    assert enrol.returncode == 0, errors
    assert "director is active" in rest
    assert password not in profile.read_bytes().decode("latin-1")

    login = client(served, profile, "login", stdin=f"{passphrase}\n{password}\n{totp.now()}\n")
    assert login.returncode == 0, login.stderr
    whoami = client(served, profile, "whoami", stdin=f"{passphrase}\n")
    assert (whoami.returncode, whoami.stdout.strip()) == (0, "director investigator active")

    wrong = client(served, profile, "whoami", stdin="not the passphrase\n")
    assert wrong.returncode == 1
    assert "wrong passphrase" in wrong.stderr

    logout = client(served, profile, "logout", stdin=f"{passphrase}\n")
    assert logout.returncode == 0, logout.stderr
    after = client(served, profile, "whoami", stdin=f"{passphrase}\n")
    assert after.returncode == 1
