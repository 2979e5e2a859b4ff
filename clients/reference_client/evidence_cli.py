"""`tipline-client evidence ...`: send a file as encrypted evidence; verify one and print its
chain of custody.

`send` (operative or investigator): encrypts FILE to the investigators of the root-signed key
directory, signs both digests with the device key, uploads it (tus, resuming), and writes the
attachment's manifest (ids, digests, device signature and key) as JSON: the device's record of
what it sent, and what `verify` checks a download against.

`verify` (investigator): downloads the attachment, checks the device signature over the digests,
the ciphertext digest, decrypts (streaming) and checks the plaintext digest, then prints the
custody history -- the sheet to hand to a prosecutor.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Final

import msgspec

from clients.reference_client import keys
from clients.reference_client.envelope import EnvelopeError
from clients.reference_client.evidence import (
    EvidenceClient,
    EvidenceError,
    SealedAttachment,
    Verification,
    custody_lines,
    seal_file,
)
from clients.reference_client.profile import Profile, save_profile
from clients.reference_client.report_cli import ProfileState

COMMAND: Final = "evidence"


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evidence = subparsers.add_parser(COMMAND, help="encrypted evidence: send, verify")
    commands = evidence.add_subparsers(dest="evidence_command", required=True)
    send = commands.add_parser("send", help="encrypt, sign and upload a file")
    send.add_argument("file", type=Path)
    send.add_argument("--manifest", type=Path, required=True, help="where to write the manifest")
    send.add_argument("--root-public-key", help="organisation root public key, pinned once")
    verify = commands.add_parser("verify", help="download, decrypt, verify; print custody")
    verify.add_argument("manifest", type=Path, help="the manifest `send` wrote")
    verify.add_argument("--out", type=Path, required=True, help="where to write the plaintext")


async def send_file(state: ProfileState, source: Path, manifest: Path) -> SealedAttachment:
    attachment_id = uuid.uuid4()
    ciphertext = manifest.with_name(f"{attachment_id}.age")
    async with state.client() as client:
        directory = await state.directory_for_sealing(client)
        sealed = await asyncio.to_thread(
            seal_file,
            source,
            ciphertext,
            directory.investigator_recipients(),
            state.profile.device_key(),
            attachment_id,
        )
        # The manifest is written before the upload, so a restarted client can resume it.
        await asyncio.to_thread(manifest.write_bytes, msgspec.json.encode(sealed))
        async with EvidenceClient(client) as evidence:
            await evidence.upload(state.token, sealed, progress=_progress)
    return sealed


async def verify_file(state: ProfileState, manifest: Path, out: Path) -> Verification:
    raw = await asyncio.to_thread(manifest.read_bytes)
    sealed = msgspec.json.decode(raw, type=SealedAttachment)
    async with state.client() as client, EvidenceClient(client) as evidence:
        return await evidence.verify(state.token, sealed, state.profile.age_identity, out)


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} bytes")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def run(args: argparse.Namespace, profile: Profile, passphrase: str) -> None:
    state = ProfileState(profile)
    try:
        state.pin_root_key(getattr(args, "root_public_key", None))
        if args.evidence_command == "send":
            sealed = asyncio.run(send_file(state, args.file, args.manifest))
            _say(f"uploaded {sealed.attachment_id} ciphertext sha256 {sealed.ciphertext_sha256}")
        else:
            verified = asyncio.run(verify_file(state, args.manifest, args.out))
            _say(f"verified {verified.attachment_id}")
            _say("  device signature: valid over both digests")
            _say(f"  ciphertext sha256 {verified.ciphertext_sha256}: matches")
            _say(f"  plaintext sha256  {verified.plaintext_sha256}: matches")
            _say(f"  plaintext written to {verified.plaintext_path}")
            _say("chain of custody:")
            for line in custody_lines(verified.custody):
                _say(f"  {line}")
    except (keys.DirectoryError, EnvelopeError, EvidenceError) as exc:
        raise SystemExit(f"tipline-client: {exc}") from None
    finally:
        if state.profile != profile:
            save_profile(args.profile, state.profile, passphrase)
