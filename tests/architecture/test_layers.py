"""The folder tree is the architecture; these tests keep it honest.

Dependencies point one way (routes -> service -> queries), plumbing never reaches into a
capability, and the reference client never borrows the server's code, so the end-to-end tests
prove the documented protocol rather than shared code.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.sql import QUERIES_DIR, all_queries

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"
CLIENT = ROOT / "clients"
PLUMBING = {
    "app",
    "asgi",
    "cli",
    "db",
    "embedded",
    "errors",
    "keyring",
    "logs",
    "migrations",
    "problems",
    "settings",
    "sql",
    "tasks",
    "wire",
}
FOUNDATIONS = {"identity", "audit"}
# Plumbing that may wire capabilities together: the app factory and the operator's CLI.
COMPOSITION_ROOTS = {"app", "cli"}


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def capability_of(path: Path) -> str | None:
    relative = path.relative_to(SERVER)
    return relative.parts[0] if len(relative.parts) > 1 else None


@pytest.mark.parametrize("path", python_files(CLIENT), ids=str)
def test_the_reference_client_never_imports_the_server(path: Path) -> None:
    assert not [m for m in imports_of(path) if m == "server" or m.startswith("server.")]


@pytest.mark.parametrize("path", python_files(SERVER), ids=str)
def test_layers_point_one_way(path: Path) -> None:
    modules = set(imports_of(path))
    layer = path.stem
    capability = capability_of(path)
    if layer in {"service", "queries"}:
        assert not {m for m in modules if m.split(".")[0] == "litestar"}, "no HTTP below routes"
    if layer == "queries":
        assert not {m for m in modules if re.search(r"\.(service|routes)$", m)}
    if layer == "service":
        assert not {m for m in modules if m.endswith(".routes")}
    if capability is None and path.stem not in COMPOSITION_ROOTS:
        capabilities = {p.name for p in SERVER.iterdir() if (p / "__init__.py").exists()}
        reaching = {
            m for m in modules if m.split(".")[:2][-1] in capabilities and m.startswith("server.")
        }
        assert not reaching, f"plumbing module imports a capability: {reaching}"
    if capability is not None:
        assert not {m for m in modules if m in {"server.app", "server.cli"}}
    if capability in FOUNDATIONS:
        # Every capability may use identity and audit; they use no other capability.
        capabilities = {p.name for p in SERVER.iterdir() if (p / "__init__.py").exists()}
        others = capabilities - FOUNDATIONS - {"envelope"}
        reaching = {m for m in modules if m.startswith("server.") and m.split(".")[1] in others}
        assert not reaching, f"{capability} depends on {reaching}"


def test_every_named_query_is_used_and_every_use_exists() -> None:
    used: set[str] = set()
    for path in python_files(SERVER):
        used |= set(re.findall(r"""query\(\s*["']([a-z_]+\.[a-z0-9_]+)["']""", path.read_text()))
    defined = set(all_queries())
    assert used - defined == set(), "code names a query that no .sql file defines"
    assert defined - used == set(), f"unused queries in {QUERIES_DIR}"


def test_plumbing_list_matches_the_tree() -> None:
    modules = {p.stem for p in SERVER.glob("*.py")} - {"__init__", "__main__"}
    assert modules == PLUMBING, "a new plumbing module: add it here on purpose"
