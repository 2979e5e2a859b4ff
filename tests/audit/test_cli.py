"""`tipline audit verify` / `checkpoint` as the operator runs them."""

from __future__ import annotations

import argparse
from pathlib import Path

import asyncpg
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import db
from server.audit import cli, sealer
from server.audit.schemas import Checkpoint
from tests.audit.conftest import record_events
from tests.conftest import TestDatabase


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tipline")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_verify_is_0_on_a_clean_chain_and_1_with_the_position_after_tampering(
    database: TestDatabase,
    app_pool: db.Pool,
    admin: asyncpg.Connection,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ids = await record_events(app_pool, 5)
    await sealer.seal_pending(app_pool, batch=10, signing_key=None)
    assert await cli.run_verify(database.app_url) == 0
    assert "audit chain OK: head position 5" in capsys.readouterr().out

    await admin.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
    await admin.execute("UPDATE audit_events SET actor_role = 'admin' WHERE id = $1", ids[3])
    await admin.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    assert await cli.run_verify(database.app_url) == 1
    out = capsys.readouterr().out
    assert f"BROKEN at position 4 (event id {ids[3]}): entry_mismatch" in out


async def test_verify_seals_nothing(
    database: TestDatabase, app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    await record_events(app_pool, 2)
    assert await cli.run_verify(database.app_url) == 0
    assert await admin.fetchval("SELECT count(*) FROM audit_chain") == 0


async def test_exported_checkpoint_and_public_key_through_the_command_line(
    database: TestDatabase,
    app_pool: db.Pool,
    admin: asyncpg.Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = Ed25519PrivateKey.generate()
    public_pem = tmp_path / "audit.pub"
    public_pem.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    await record_events(app_pool, 3)
    await sealer.seal_pending(app_pool, batch=10, signing_key=key)
    await record_events(app_pool, 3)
    await sealer.seal_pending(app_pool, batch=10, signing_key=key)

    assert await cli.run(parse(["audit", "checkpoint"]), database.app_url) == 0
    exported = tmp_path / "head.json"
    exported.write_text(capsys.readouterr().out)
    assert msgspec.json.decode(exported.read_bytes(), type=Checkpoint).position == 6

    argv = ["audit", "verify", "--public-key", str(public_pem), "--checkpoint", str(exported)]
    assert await cli.run(parse(argv), database.app_url) == 0
    capsys.readouterr()

    for table in ("audit_checkpoints", "audit_chain"):
        await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
        await admin.execute(f"DELETE FROM {table} WHERE position > 3")
        await admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
    assert await cli.run(parse(argv), database.app_url) == 1
    assert "BROKEN at position 4: tail_truncated" in capsys.readouterr().out
