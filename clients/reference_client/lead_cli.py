"""Vetting, leads and shares on the command line.

Investigators: `officer propose|approve|suspend|revoke|list`, `lead create|share|approve-share|
revoke-share|log`, `exposure`, `trace FILE`. Officers: `assignments`, `open`, `ack`, `outcome`.

The async functions are the library the tests drive; `run` is the thin shell `cli.py` calls.
Each share this desk makes is remembered (trace code and text) in a file next to the profile,
sealed to the investigator's own age key, so `trace` works offline and a stolen laptop without
the key yields no codes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from clients.reference_client import keys, leads
from clients.reference_client.api import raise_for_problem
from clients.reference_client.envelope import EnvelopeError, open_sealed
from clients.reference_client.profile import Profile, save_profile
from clients.reference_client.report_cli import ProfileState

COMMANDS: Final = frozenset(
    {"officer", "lead", "exposure", "trace", "assignments", "open", "ack", "outcome"}
)
OUTCOMES: Final = ("raid_done", "target_gone", "referred_to_aftercare", "no_action")


def records_path(profile_path: Path) -> Path:
    return profile_path.with_name(profile_path.name + ".shares")


def load_records(path: Path, identity: str) -> list[leads.SharedCopy]:
    if not path.exists():
        return []
    return leads.open_records(path.read_bytes(), identity)


def save_records(path: Path, records: list[leads.SharedCopy], recipient: str) -> None:
    sealed = leads.seal_records(records, recipient)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(sealed)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


# --- investigator -------------------------------------------------------------------------------


async def lead_text(state: ProfileState, lead_id: uuid.UUID) -> str:
    """The lead as the investigators sealed it, opened with this desk's own key."""
    async with state.client() as client:
        response = await client.call("GET", f"/v1/leads/{lead_id}", state.token)
    raise_for_problem(response)
    ciphertext = base64.b64decode(response.json()["ciphertext"])
    return open_sealed(ciphertext, state.profile.age_identity).decode("utf-8")


async def create_lead(state: ProfileState, text: str, report_ids: list[uuid.UUID]) -> uuid.UUID:
    async with state.client() as client:
        directory = await state.fresh_directory(client)
        return await leads.create_lead(client, state.token, directory, text, report_ids)


async def share_lead(
    state: ProfileState,
    records_file: Path,
    lead_id: uuid.UUID,
    officer_ids: list[uuid.UUID],
    not_before: datetime | None,
    hours: float,
) -> list[leads.ShareInfo]:
    """One copy per officer, each with its own trace code and wording, each remembered."""
    text = await lead_text(state, lead_id)
    records = load_records(records_file, state.profile.age_identity)
    made = []
    async with state.client() as client:
        directory = await state.fresh_directory(client)
        for officer_id in officer_ids:
            info, copy = await leads.share_lead(
                client,
                state.token,
                directory,
                lead_id,
                officer_id,
                text,
                not_before=not_before,
                hours=hours,
                others=records,
            )
            records.append(copy)
            # Saved after each share: a code the server already holds must never be lost.
            save_records(records_file, records, state.profile.age_recipient())
            made.append(info)
    return made


async def trace_file(state: ProfileState, records_file: Path, leaked: str) -> leads.TraceMatch:
    return leads.trace(leaked, load_records(records_file, state.profile.age_identity))


# --- officer ------------------------------------------------------------------------------------


async def open_assignment(state: ProfileState, share_id: uuid.UUID) -> str:
    async with state.client() as client:
        return await leads.open_share(client, state.token, share_id, state.profile.age_identity)


async def report_outcome(
    state: ProfileState,
    lead_id: uuid.UUID,
    outcome: str,
    arrests: int,
    victims_safe: int,
    note: str | None,
) -> dict[str, Any]:
    async with state.client() as client:
        # Only a note is sealed, so only a note needs the verified directory.
        directory = await state.fresh_directory(client) if note is not None else None
        return await leads.report_outcome(
            client,
            state.token,
            directory,
            lead_id,
            outcome,
            arrests=arrests,
            victims_safe=victims_safe,
            note=note,
        )


# --- the shell ----------------------------------------------------------------------------------


def _time(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError("use YYYY-MM-DDTHH:MM:SSZ (UTC)") from None


def _root_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root-public-key", help="pin this root key (only if none is pinned)")


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    officer = subparsers.add_parser("officer", help="investigator: vet officers")
    officer_commands = officer.add_subparsers(dest="officer_command", required=True)
    propose = officer_commands.add_parser("propose", help="propose (or renew) an officer")
    propose.add_argument("account_id", type=uuid.UUID)
    propose.add_argument("--unit", required=True)
    propose.add_argument("--rank", required=True)
    propose.add_argument("--review-due", required=True, help="YYYY-MM-DD")
    for name, text in (
        ("approve", "approve a proposal (a second investigator)"),
        ("suspend", "suspend at once: sessions end, shares stop opening"),
        ("revoke", "revoke for good"),
    ):
        officer_commands.add_parser(name, help=text).add_argument("officer_id", type=uuid.UUID)
    officer_commands.add_parser("list", help="the vetting list")

    lead = subparsers.add_parser("lead", help="investigator: leads and shares")
    lead_commands = lead.add_subparsers(dest="lead_command", required=True)
    create = lead_commands.add_parser("create", help="a lead from verified reports")
    create.add_argument("--report", type=uuid.UUID, action="append", required=True)
    create.add_argument(
        "--text", help="the lead, without the operative's identity; stdin if left out"
    )
    _root_key_option(create)
    share = lead_commands.add_parser("share", help="share with officers, a traced copy each")
    share.add_argument("lead_id", type=uuid.UUID)
    share.add_argument("--officer", type=uuid.UUID, action="append", required=True)
    share.add_argument("--not-before", type=_time, help="release time, UTC (default: now)")
    share.add_argument("--hours", type=float, default=24.0, help="how long it stays open")
    _root_key_option(share)
    approve = lead_commands.add_parser("approve-share", help="dual control: approve a share")
    approve.add_argument("share_id", type=uuid.UUID)
    revoke = lead_commands.add_parser("revoke-share", help="revoke a share at once")
    revoke.add_argument("share_id", type=uuid.UUID)
    log = lead_commands.add_parser("log", help="the lead's shares and access log")
    log.add_argument("lead_id", type=uuid.UUID)

    subparsers.add_parser("exposure", help="investigator: who could read compromised leads")
    trace = subparsers.add_parser("trace", help="investigator: name the share a leak came from")
    trace.add_argument("file", type=Path, help="the leaked text ('-' for standard input)")

    subparsers.add_parser("assignments", help="officer: shares open to me now")
    open_parser = subparsers.add_parser("open", help="officer: fetch and decrypt a share")
    open_parser.add_argument("share_id", type=uuid.UUID)
    ack = subparsers.add_parser("ack", help="officer: acknowledge a share")
    ack.add_argument("share_id", type=uuid.UUID)
    outcome = subparsers.add_parser("outcome", help="officer: report what came of a lead")
    outcome.add_argument("lead_id", type=uuid.UUID)
    outcome.add_argument("--outcome", choices=OUTCOMES, required=True)
    outcome.add_argument("--arrests", type=int, default=0)
    outcome.add_argument("--victims-safe", type=int, default=0)
    outcome.add_argument("--note", help="free text, sealed to the investigators")
    _root_key_option(outcome)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def run(args: argparse.Namespace, profile: Profile, passphrase: str) -> None:
    state = ProfileState(profile)
    try:
        state.pin_root_key(getattr(args, "root_public_key", None))
        asyncio.run(_dispatch(args, state))
    except (keys.DirectoryError, EnvelopeError, leads.TraceError) as exc:
        raise SystemExit(f"tipline-client: {exc}") from None
    finally:
        if state.profile != profile:
            save_profile(args.profile, state.profile, passphrase)


async def _officer(args: argparse.Namespace, state: ProfileState) -> None:
    async with state.client() as client:
        command = args.officer_command
        if command == "propose":
            shown = await leads.propose_officer(
                client, state.token, args.account_id, args.unit, args.rank, args.review_due
            )
            _say(f"{shown.account_id} {shown.status}: needs a second investigator's approval")
        elif command == "approve":
            shown = await leads.approve_officer(client, state.token, args.officer_id)
            _say(f"{shown.account_id} {shown.status}")
        elif command == "suspend":
            await leads.suspend_officer(client, state.token, args.officer_id)
            _say(f"{args.officer_id} suspended")
        elif command == "revoke":
            await leads.revoke_officer(client, state.token, args.officer_id)
            _say(f"{args.officer_id} revoked")
        else:
            for o in await leads.list_officers(client, state.token):
                flags = ",".join(a["kind"] for a in o.alerts) or "-"
                _say(
                    f"{o.account_id} {o.handle} {o.status} review {o.review_due}"
                    f"{' OVERDUE' if o.review_overdue else ''} cleared={o.cleared} "
                    f"readable={len(o.readable)} alerts={flags}"
                )


async def _lead(args: argparse.Namespace, state: ProfileState) -> None:
    command = args.lead_command
    if command == "create":
        text = args.text if args.text is not None else sys.stdin.read().strip("\n")
        if not text.strip():
            raise SystemExit("tipline-client: the lead text is empty")
        _say(f"lead {await create_lead(state, text, args.report)}")
    elif command == "share":
        made = await share_lead(
            state,
            records_path(args.profile),
            args.lead_id,
            args.officer,
            args.not_before,
            args.hours,
        )
        for info in made:
            _say(f"share {info.id} to {info.officer_id} {info.state} until {info.expires_at}")
    else:
        async with state.client() as client:
            if command == "approve-share":
                info = await leads.approve_share(client, state.token, args.share_id)
                _say(f"share {info.id} {info.state}")
            elif command == "revoke-share":
                await leads.revoke_share(client, state.token, args.share_id)
                _say(f"share {args.share_id} revoked")
            else:
                for s in await leads.lead_shares(client, state.token, args.lead_id):
                    _say(
                        f"share {s.id} officer {s.officer_id} {s.state} "
                        f"{s.not_before:%Y-%m-%dT%H:%M:%SZ}..{s.expires_at:%Y-%m-%dT%H:%M:%SZ} "
                        f"opens={s.opens}"
                    )
                for e in await leads.access_log(client, state.token, args.lead_id):
                    _say(f"{e['accessed_at']} {e['handle']} opened share {e['share_id']}")


async def _dispatch(args: argparse.Namespace, state: ProfileState) -> None:
    command = args.command
    if command == "officer":
        await _officer(args, state)
    elif command == "lead":
        await _lead(args, state)
    elif command == "exposure":
        async with state.client() as client:
            result = await leads.exposure(client, state.token)
        for o in result["officers"]:
            _say(
                f"{o['handle']} {o['officer_id']} compromised={o['compromised']} "
                f"clean={o['clean']} coverage={o['coverage']:.2f}"
            )
    elif command == "trace":
        leaked = sys.stdin.read() if str(args.file) == "-" else args.file.read_text("utf-8")
        match = await trace_file(state, records_path(args.profile), leaked)
        _say(f"share {match.share_id} officer {match.officer_id} (by {match.method})")
    elif command == "assignments":
        async with state.client() as client:
            for a in await leads.assignments(client, state.token):
                seen = "acknowledged" if a.acknowledged else "new"
                _say(f"share {a.share_id} lead {a.lead_id} {seen} until {a.expires_at}")
    elif command == "open":
        _say(await open_assignment(state, args.share_id))
    elif command == "ack":
        async with state.client() as client:
            await leads.acknowledge(client, state.token, args.share_id)
        _say(f"acknowledged {args.share_id}")
    elif command == "outcome":
        recorded = await report_outcome(
            state, args.lead_id, args.outcome, args.arrests, args.victims_safe, args.note
        )
        _say(f"outcome {recorded['id']} recorded")
