"""Named SQL: plain `.sql` files under `sql/queries/`, one block per query.

A block starts with `-- name: <name>`, then a one-line `-- ` description, then the statement.
Queries are looked up by `<file stem>.<name>` and called only through the typed wrappers in each
capability's `queries.py`; parameters are always bound ($1, $2, ...), never formatted in.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import msgspec

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
QUERIES_DIR = SQL_DIR / "queries"
MIGRATIONS_DIR = SQL_DIR / "migrations"

_BLOCK = re.compile(r"^-- name: (?P<name>[a-z_][a-z0-9_]*)\s*$", re.MULTILINE)

T = TypeVar("T", bound=msgspec.Struct)


class Query(msgspec.Struct, frozen=True):
    name: str
    description: str
    text: str


def parse_queries(source: str, prefix: str) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    starts = list(_BLOCK.finditer(source))
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        body = source[match.end() : following.start() if following else len(source)].strip()
        lines = body.splitlines()
        if not lines or not lines[0].startswith("-- "):
            raise ValueError(f"{prefix}.{match['name']}: the first line must describe the query")
        text = "\n".join(lines[1:]).strip().rstrip(";")
        name = f"{prefix}.{match['name']}"
        if name in queries:
            raise ValueError(f"{name}: defined twice")
        if not text:
            raise ValueError(f"{name}: empty statement")
        queries[name] = Query(name=name, description=lines[0][3:].strip(), text=text)
    return queries


@cache
def all_queries() -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for path in sorted(QUERIES_DIR.glob("*.sql")):
        queries.update(parse_queries(path.read_text(encoding="utf-8"), path.stem))
    return queries


def query(name: str) -> str:
    """The statement text of a named query; a missing name fails at import of its wrapper."""
    return all_queries()[name].text


def to_struct(record: Any, type_: type[T]) -> T:
    """Turn an asyncpg Record into a Struct, checking every column's type on the way."""
    return msgspec.convert(dict(record.items()), type_)
