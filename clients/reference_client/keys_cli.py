"""`tipline-client keys ...`: make the root key, sign a directory offline, publish, fetch.

`init-root` and `sign-directory` need no server and are meant for an offline machine; only the
signed directory file travels to a networked one for `publish`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

from clients.reference_client import keys
from clients.reference_client.api import TiplineClient
from clients.reference_client.profile import Profile, load_profile

COMMAND = "keys"


def _ask(label: str, *, secret: bool = True) -> str:
    # Imported here: cli.py imports this module while it is itself still loading.
    from clients.reference_client.cli import ask

    return ask(label, secret=secret)


def _ask_twice(label: str) -> str:
    from clients.reference_client.cli import ask_twice

    return ask_twice(label)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(COMMAND, help="the organisation root key and key directory")
    commands = parser.add_subparsers(dest="keys_command", required=True)
    init = commands.add_parser("init-root", help="make the offline root key (Ed25519)")
    init.add_argument("--out", type=Path, required=True, help="where to write the encrypted key")
    sign = commands.add_parser("sign-directory", help="sign a key directory with the root key")
    sign.add_argument("--root", type=Path, required=True, help="the encrypted root key file")
    sign.add_argument("--version", type=int, required=True, help="higher than the current one")
    sign.add_argument(
        "--entries",
        type=Path,
        required=True,
        help="JSON list of {account_id, role, age_recipient, device_keys}",
    )
    sign.add_argument("--out", type=Path, help="write the signed directory here, not stdout")
    publish = commands.add_parser("publish", help="upload a signed directory (investigator)")
    publish.add_argument("--file", type=Path, required=True, help="from sign-directory")
    fetch = commands.add_parser("fetch", help="fetch the current directory and verify it")
    fetch.add_argument(
        "--root-public-key", required=True, help="base64; must match the pinned fingerprint"
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.keys_command == "init-root":
            _init_root(args)
        elif args.keys_command == "sign-directory":
            _sign(args)
        elif args.keys_command == "publish":
            _publish(args)
        elif args.keys_command == "fetch":
            _fetch(args)
    except keys.DirectoryError as exc:
        sys.stderr.write(f"tipline-client: {exc}\n")
        return 1
    return 0


def _init_root(args: argparse.Namespace) -> None:
    passphrase = _ask_twice("passphrase for the root key")
    public_key = keys.init_root(args.out, passphrase)
    _say(f"root key written to {args.out}; keep it offline")
    _say(f"TIPLINE_ROOT_PUBLIC_KEY={public_key}")
    _say(f"fingerprint {keys.root_fingerprint(public_key)}")


def _sign(args: argparse.Namespace) -> None:
    try:
        entries = msgspec.json.decode(args.entries.read_bytes(), type=list[keys.DirectoryEntry])
    except OSError as error:
        raise keys.DirectoryError(f"could not read {args.entries}") from error
    except msgspec.MsgspecError as error:
        raise keys.DirectoryError(f"{args.entries}: {error}") from None
    signed = keys.sign_directory(args.root, _ask("root key passphrase"), args.version, entries)
    encoded = msgspec.json.encode(signed)
    if args.out is None:
        _say(encoded.decode("ascii"))
    else:
        args.out.write_bytes(encoded)
        _say(f"directory version {signed.version} signed into {args.out}")


def _profile(args: argparse.Namespace) -> Profile:
    profile = load_profile(args.profile, _ask("profile passphrase"))
    if profile.session_token is None:
        raise LookupError("not logged in")
    return profile


def _publish(args: argparse.Namespace) -> None:
    try:
        signed = msgspec.json.decode(args.file.read_bytes(), type=keys.SignedDirectory)
    except OSError as error:
        raise keys.DirectoryError(f"could not read {args.file}") from error
    except msgspec.MsgspecError:
        raise keys.DirectoryError(f"{args.file} is not a signed directory") from None
    profile = _profile(args)

    async def go() -> keys.SignedDirectory:
        async with TiplineClient(profile.server_url, profile.device_key()) as client:
            return await keys.publish_directory(client, str(profile.session_token), signed)

    published = asyncio.run(go())
    _say(f"directory version {published.version} published")


def _fetch(args: argparse.Namespace) -> None:
    profile = _profile(args)
    if profile.org_root_fingerprint is not None:
        keys.check_root_key(args.root_public_key, profile.org_root_fingerprint)

    async def go() -> keys.SignedDirectory:
        async with TiplineClient(profile.server_url, profile.device_key()) as client:
            return await keys.fetch_directory(client, str(profile.session_token))

    directory = keys.verify_directory(asyncio.run(go()), args.root_public_key, None)
    _say(f"directory version {directory.version}, issued {directory.issued_at}")
    for entry in directory.entries:
        _say(f"{entry.role:<12} {entry.account_id} {entry.age_recipient}")
