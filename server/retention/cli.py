"""`tipline retention hold|release LEAD_ID` and `tipline retention run`, for the operator.

They connect as the app's own role and work in the `retention` context, like the scheduled job:
placing a hold needs no privilege the service does not already have.
"""

from __future__ import annotations

import argparse
import sys
import uuid

import msgspec

from server import db
from server.errors import NotFound
from server.evidence.service import EvidenceContext
from server.evidence.storage import storage_from_settings
from server.identity.service import IdentityContext
from server.keyring import load_keyring
from server.retention import service
from server.settings import Settings


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retention = subparsers.add_parser("retention", help="legal holds and the retention job")
    commands = retention.add_subparsers(dest="retention_command", required=True)
    hold = commands.add_parser("hold", help="put a lead on legal hold (its evidence is kept)")
    hold.add_argument("lead_id", type=uuid.UUID)
    release = commands.add_parser("release", help="lift a lead's legal hold")
    release.add_argument("lead_id", type=uuid.UUID)
    commands.add_parser("run", help="run the retention job once now")


async def run(args: argparse.Namespace, settings: Settings, database_url: str) -> int:
    """Runs the `retention` command parsed by `add_commands`; returns the exit code."""
    pool = await db.create_pool(msgspec.structs.replace(settings, db_pool_min_size=1), database_url)
    try:
        if args.retention_command == "hold":
            placed = await service.place_hold(pool, args.lead_id)
            _say(f"lead {args.lead_id}: {'placed on hold' if placed else 'already on hold'}")
        elif args.retention_command == "release":
            released = await service.release_hold(pool, args.lead_id)
            _say(f"lead {args.lead_id}: {'hold lifted' if released else 'was not on hold'}")
        else:
            evidence = EvidenceContext(settings, storage_from_settings(settings))
            identity = IdentityContext(settings, load_keyring(settings.secret_key_path))
            try:
                result = await service.run_scheduled(
                    service.RetentionContext(identity, evidence), pool
                )
            finally:
                await evidence.storage.close()
            _say(msgspec.json.encode(result).decode())
    except NotFound:
        _say(f"tipline: error: no lead {args.lead_id}", error=True)
        return 2
    finally:
        await pool.close()
    return 0


def _say(line: str, *, error: bool = False) -> None:
    # A CLI talks to its operator on stdout; the service itself never prints.
    (sys.stderr if error else sys.stdout).write(line + "\n")
