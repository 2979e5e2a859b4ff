"""Shared helpers for the deployment checks: where the files are, how to read them, and where
the validators (installed from PyPI into the same virtualenv) live."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type information

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def tool(name: str) -> str | None:
    """A validator's executable: beside this Python first (the project's virtualenv), then PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def pinned_tool(name: str) -> str:
    """A validator requirements-dev.lock installs: missing means a broken set-up, not a reason
    to skip the check."""
    found = tool(name)
    assert found is not None, f"{name} is missing: run ./scripts/bootstrap"
    return found
