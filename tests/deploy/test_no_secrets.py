"""Nothing under deploy/ holds a secret value: no private key, no password in a URL or
assignment, no cloud access key, no token-shaped string. The deployment files reference
secrets by file or Secret name only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY

FILES = sorted(p for p in DEPLOY.rglob("*") if p.is_file())
PATTERNS = {
    "private key block": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "age identity": re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]+"),
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^\s/@:]+:[^\s/@$]+@"),
    # A name that ENDS in password/secret/token/..._key, then a literal value on the same line
    # (a `$VAR`, `${...}`, path or `%d/` reference is not a value).
    "password assignment": re.compile(
        r"(?i)\b[\w.-]*(password|passwd|secret|token|secret_key|private_key|access_key)"
        r"[\"']?[ \t]*[:=][ \t]*[\"']?(?![$`{<%/]|REPLACE)[^\s'\"#]{8,}"
    ),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    # 32 random bytes in base64 (the secret key) or 64 hex digits (a token): never in a file here.
    "key-shaped base64": re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])"),
    "token-shaped hex": re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])"),
}


def test_the_scan_sees_the_deployment_files() -> None:
    names = {p.relative_to(DEPLOY).as_posix() for p in FILES}
    assert {"Containerfile", "compose.yaml", "Caddyfile", "k8s/app.yaml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_no_secret_value_in_deployment_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    found = {name for name, pattern in PATTERNS.items() if pattern.search(text)}
    assert found == set()


@pytest.mark.parametrize(
    ("sample", "kind"),
    [
        ("DATABASE_URL=postgresql://tipline_app:hunter2hunter2@db/tipline", "password in a URL"),
        ("POSTGRES_PASSWORD: correct-horse-battery", "password assignment"),
        ("secret_key = 'kq3N9x2LrT8vP0wY'", "password assignment"),
        ("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
        ("key: " + "A" * 43 + "=", "key-shaped base64"),
        ("token " + "ab" * 32, "token-shaped hex"),
        ("-----BEGIN PRIVATE KEY-----", "private key block"),
    ],
)
def test_the_scan_would_catch_a_secret(sample: str, kind: str) -> None:
    assert PATTERNS[kind].search(sample)


@pytest.mark.parametrize(
    "sample",
    [
        "PGPASSFILE: /run/secrets/tipline_app_pgpass",
        "POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password",
        "TIPLINE_METRICS_TOKEN_FILE=%d/metrics.token",
        "TIPLINE_ROOT_PUBLIC_KEY: ${TIPLINE_ROOT_PUBLIC_KEY:?set it}",
        "DATABASE_URL: postgresql://tipline_app@db:5432/tipline",
    ],
)
def test_references_to_secrets_are_not_flagged(sample: str) -> None:
    assert [name for name, pattern in PATTERNS.items() if pattern.search(sample)] == []
