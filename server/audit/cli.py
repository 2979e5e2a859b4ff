"""`tipline audit verify` and `tipline audit checkpoint`, for the operator.

`verify` recomputes the chain and names the first position that does not hold; `checkpoint`
prints the latest signed head so it can be kept on another system (SEC-LOG-03), and a copy
fed back to `verify --checkpoint` catches a tail cut off together with its checkpoints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server import db
from server.audit import queries, service
from server.audit.schemas import Checkpoint


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="check the audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = commands.add_parser("verify", help="recompute the audit hash chain")
    verify.add_argument(
        "--public-key",
        type=Path,
        help="PEM file with the sealer's Ed25519 public key: every checkpoint must verify",
    )
    verify.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        default=[],
        help="a checkpoint saved earlier by `tipline audit checkpoint` (repeatable)",
    )
    commands.add_parser("checkpoint", help="print the latest signed head as JSON, for export")


async def run(args: argparse.Namespace, database_url: str) -> int:
    """Runs the `audit` command parsed by `add_commands`; returns the exit code."""
    if args.audit_command == "checkpoint":
        return await run_checkpoint(database_url)
    public_key = load_public_key(args.public_key.read_bytes()) if args.public_key else None
    trusted = [msgspec.json.decode(p.read_bytes(), type=Checkpoint) for p in args.checkpoint]
    return await run_verify(database_url, public_key=public_key, trusted=trusted)


async def run_verify(
    database_url: str,
    *,
    public_key: Ed25519PublicKey | None = None,
    trusted: Sequence[Checkpoint] = (),
) -> int:
    """Verifies without sealing anything; 0 if the chain holds, 1 at the first break."""
    pool = await _pool(database_url)
    try:
        async with db.transaction(pool, role=service.AUDITOR_ROLE) as conn:
            result = await service.verify_chain(conn, public_key=public_key, trusted=trusted)
    finally:
        await pool.close()
    if result.ok:
        _say(
            f"audit chain OK: head position {result.head_position}, "
            f"{result.checkpoints_checked} checkpoint(s) checked, "
            f"{result.unsealed_events} event(s) awaiting the sealer"
        )
        return 0
    event = f" (event id {result.broken_event_id})" if result.broken_event_id else ""
    reason = result.reason.value if result.reason else "unknown"
    _say(
        f"audit chain BROKEN at position {result.broken_position}{event}: {reason}; "
        f"positions 1..{result.head_position} verify"
    )
    return 1


async def run_checkpoint(database_url: str) -> int:
    pool = await _pool(database_url)
    try:
        async with db.transaction(pool, role=service.AUDITOR_ROLE) as conn:
            latest = await queries.latest_checkpoint(conn)
    finally:
        await pool.close()
    if latest is None:
        _say("no signed checkpoint yet (is the sealer running with a signing key?)", error=True)
        return 1
    exported = Checkpoint(
        position=latest.position,
        chain_hash=latest.chain_hash.hex(),
        signature=latest.signature.hex(),
    )
    _say(msgspec.json.encode(exported).decode())
    return 0


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the audit public key must be an Ed25519 key")
    return key


async def _pool(database_url: str) -> db.Pool:
    pool: db.Pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=1,
        server_settings={"search_path": db.SEARCH_PATH, "application_name": "tipline-audit"},
    )
    return pool


def _say(line: str, *, error: bool = False) -> None:
    # A CLI talks to its operator on stdout; the service itself never prints.
    (sys.stderr if error else sys.stdout).write(line + "\n")
