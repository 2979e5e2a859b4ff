"""`tipline-client`: a thin command line over the client library.

Secrets are asked for at the terminal (never taken as arguments, which land in shell history and
process lists); when standard input is not a terminal, each answer is one line of it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from clients.reference_client import evidence_cli, flows, keys_cli, lead_cli, report_cli
from clients.reference_client.api import ApiError, TiplineClient
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.profile import ProfileError, load_profile, save_profile

DEFAULT_PROFILE = Path.home() / ".config" / "tipline" / "profile.age"


def ask(label: str, *, secret: bool = True) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(f"{label}: ") if secret else input(f"{label}: ")
    print(f"{label}: ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().rstrip("\n")


def ask_twice(label: str) -> str:
    first = ask(label)
    if ask(f"{label} (again)") != first:
        raise SystemExit("tipline-client: the two entries differ")
    return first


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tipline-client", description="Tipline reference client")
    parser.add_argument(
        "--server",
        default=os.environ.get("TIPLINE_SERVER", "http://127.0.0.1:8000"),
        help="server URL (TIPLINE_SERVER)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=Path(os.environ.get("TIPLINE_PROFILE", DEFAULT_PROFILE)),
        help="the encrypted local profile (TIPLINE_PROFILE)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("readyz", help="ask whether the server and its database are ready")
    enrol = commands.add_parser("enrol", help="redeem an invite: make this device's keys")
    enrol.add_argument("--code", required=True, help="the invite code")
    enrol.add_argument("--root-fingerprint", help="the organisation root key fingerprint to pin")
    commands.add_parser("login", help="log in with password and TOTP; signs with the device key")
    commands.add_parser("logout", help="end the current session")
    commands.add_parser("whoami", help="show the account behind the current session")
    report_cli.add_commands(commands)
    keys_cli.add_commands(commands)
    lead_cli.add_commands(commands)
    evidence_cli.add_commands(commands)
    return parser


async def _readyz(server: str) -> str:
    # Readiness needs no identity; a throwaway key satisfies the client's constructor.
    async with TiplineClient(server, DeviceKeyPair.generate()) as client:
        return (await client.readyz()).status


def _enrol(args: argparse.Namespace) -> None:
    password = ask_twice("new password (15+ characters)")
    profile, enrolment = asyncio.run(
        flows.start_enrolment(args.server, args.code, password, args.root_fingerprint)
    )
    print(f"enrolled as {enrolment.handle} ({enrolment.role})")
    print("add this to your authenticator app, then enter its first code:")
    print(enrolment.otpauth_uri, flush=True)
    account = asyncio.run(flows.finish_enrolment(profile, ask("TOTP code", secret=False)))
    passphrase = ask_twice("passphrase to encrypt this device's profile")
    save_profile(args.profile, profile, passphrase)
    print(f"{account.handle} is {account.status}; profile saved to {args.profile}")


def _run(args: argparse.Namespace) -> None:
    if args.command == "readyz":
        print(asyncio.run(_readyz(args.server)))
        return
    if args.command == "enrol":
        _enrol(args)
        return
    passphrase = ask("profile passphrase")
    profile = load_profile(args.profile, passphrase)
    if args.command == "login":
        password = ask("password")
        profile = asyncio.run(flows.login(profile, password, ask("TOTP code", secret=False)))
        save_profile(args.profile, profile, passphrase)
        print(f"logged in as {profile.handle}")
    elif args.command == "logout":
        save_profile(args.profile, asyncio.run(flows.logout(profile)), passphrase)
        print("logged out")
    elif args.command == "whoami":
        account = asyncio.run(flows.whoami(profile))
        print(f"{account.handle} {account.role} {account.status}")
    elif args.command in report_cli.COMMANDS:
        report_cli.run(args, profile, passphrase)
    elif args.command in lead_cli.COMMANDS:
        lead_cli.run(args, profile, passphrase)
    elif args.command == evidence_cli.COMMAND:
        evidence_cli.run(args, profile, passphrase)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == keys_cli.COMMAND:
            # The root key ceremony works on offline files, without a device profile.
            return keys_cli.run(args)
        _run(args)
    except (ApiError, ProfileError, LookupError) as exc:
        print(f"tipline-client: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"tipline-client: cannot reach {args.server}: {type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
