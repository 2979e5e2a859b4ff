"""`tipline backup` and `tipline restore`, for the operator.

Both need a database role that bypasses row-level security (every table forces it): with the
embedded database that is its superuser; with an external one the operator names a dedicated
backup role explicitly with `--database-url` (docs/operations.md), never the app's own URL.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from server.backup import service
from server.evidence.storage import Storage, storage_from_settings
from server.settings import Settings


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup", help="write an age-encrypted backup of the database and the evidence store"
    )
    backup.add_argument("--out", type=Path, required=True, help="the backup file to create")
    backup.add_argument(
        "--recipient",
        help="age recipient (age1...) to encrypt to (TIPLINE_BACKUP_RECIPIENT); its identity "
        "stays offline",
    )
    backup.add_argument(
        "--database-url",
        help="a superuser or BYPASSRLS backup role (required with an external database)",
    )
    restore = subparsers.add_parser(
        "restore", help="restore a backup into a fresh database and evidence store"
    )
    restore.add_argument("--in", dest="backup_file", type=Path, required=True)
    restore.add_argument(
        "--identity", type=Path, required=True, help="the offline age identity file"
    )
    restore.add_argument(
        "--database-url",
        help="the fresh target database, as its superuser (required with an external database)",
    )
    restore.add_argument(
        "--verify-only",
        action="store_true",
        help="decrypt and check the whole backup against its manifest; change nothing",
    )


async def run(args: argparse.Namespace, settings: Settings, database_url: str | None) -> int:
    """Runs `backup` or `restore`; `database_url` is the privileged URL to use."""
    storage = storage_from_settings(settings)
    try:
        if args.command == "backup":
            return await _backup(args, settings, database_url, storage)
        return await _restore(args, settings, database_url, storage)
    except service.BackupError as exc:
        _say(f"tipline: error: {exc}", error=True)
        return 2
    finally:
        await storage.close()


async def _backup(
    args: argparse.Namespace,
    settings: Settings,
    database_url: str | None,
    storage: Storage,
) -> int:
    recipient = args.recipient or settings.backup_recipient
    if not recipient:
        raise service.BackupError("no recipient: pass --recipient or set TIPLINE_BACKUP_RECIPIENT")
    if database_url is None:
        raise service.BackupError("--database-url is required with an external database")
    manifest = await service.create_backup(
        database_url=database_url, storage=storage, out=args.out, recipient=recipient
    )
    _say(
        f"tipline: backup written to {args.out}: {len(manifest.members) - 1} evidence object(s), "
        + ", ".join(f"{k} {v}" for k, v in sorted(manifest.counts.items()))
    )
    return 0


async def _restore(
    args: argparse.Namespace,
    settings: Settings,
    database_url: str | None,
    storage: Storage,
) -> int:
    identity = args.identity.read_text(encoding="utf-8")
    if args.verify_only:
        manifest = await service.verify_backup(args.backup_file, identity)
        _say(f"tipline: backup OK ({len(manifest.members)} members, made {manifest.created_at})")
        return 0
    if database_url is None:
        raise service.BackupError("--database-url is required with an external database")
    evidence_dir = settings.evidence_path if settings.evidence_storage == "local" else None
    manifest = await service.restore_backup(
        backup=args.backup_file,
        identity=identity,
        database_url=database_url,
        storage=storage,
        evidence_dir=evidence_dir,
    )
    _say(
        f"tipline: restored the backup made {manifest.created_at}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(manifest.counts.items()))
    )
    return 0


def _say(line: str, *, error: bool = False) -> None:
    # A CLI talks to its operator on stdout; the service itself never prints.
    (sys.stderr if error else sys.stdout).write(line + "\n")
