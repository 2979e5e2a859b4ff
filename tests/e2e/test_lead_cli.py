"""The lead commands of `tipline-client`, parsed and dispatched as the command line does, against
a live server: officer vetting, a lead shared with two officers, an officer opening it, and
`trace` naming the officer from one leaked paragraph."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from clients.reference_client import lead_cli, leads
from clients.reference_client.cli import _parser
from clients.reference_client.keys import public_key_b64, root_fingerprint
from clients.reference_client.profile import Profile
from clients.reference_client.report_cli import ProfileState
from tests.actors import Actor
from tests.leads.conftest import LEAD_TEXT, Room, room, uid

__all__ = ["room"]


def state_of(room: Room, actor: Actor) -> ProfileState:
    assert room.world.root_key is not None
    root = public_key_b64(room.world.root_key)
    return ProfileState(
        Profile(
            server_url=room.world.base_url,
            handle=actor.handle,
            device_key_pem=actor.device.to_pem().decode("ascii"),
            age_identity=str(actor.age_identity),
            account_id=str(actor.account_id),
            role=actor.role,
            org_root_fingerprint=root_fingerprint(root),
            session_token=actor.token().access_token,
            root_public_key=root,
        )
    )


async def command(
    state: ProfileState, profile_path: Path, capsys: pytest.CaptureFixture[str], *argv: str
) -> str:
    args = _parser().parse_args(["--profile", str(profile_path), *argv])
    await lead_cli._dispatch(args, state)
    return capsys.readouterr().out


async def test_vet_share_open_and_trace_from_the_command_line(
    room: Room, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk, second = state_of(room, room.lead), state_of(room, room.second)
    desk_profile, second_profile = tmp_path / "desk.age", tmp_path / "second.age"
    pair = room.officers[:2]
    for officer in pair:
        out = await command(
            desk,
            desk_profile,
            capsys,
            "officer",
            "propose",
            str(officer.account_id),
            "--unit",
            "AHTJP",
            "--rank",
            "Captain",
            "--review-due",
            "2027-06-30",
        )
        assert "proposed" in out
        out = await command(
            second, second_profile, capsys, "officer", "approve", str(officer.account_id)
        )
        assert "active" in out
    listing = await command(desk, desk_profile, capsys, "officer", "list")
    assert listing.count("cleared=True") == 2

    report = await room.verified_report()
    out = await command(
        desk, desk_profile, capsys, "lead", "create", "--report", str(report), "--text", LEAD_TEXT
    )
    lead_id = uuid.UUID(out.split()[1])
    out = await command(
        desk,
        desk_profile,
        capsys,
        "lead",
        "share",
        str(lead_id),
        "--officer",
        str(pair[0].account_id),
        "--officer",
        str(pair[1].account_id),
        "--hours",
        "4",
    )
    share_ids = [uuid.UUID(line.split()[1]) for line in out.splitlines()]
    assert len(share_ids) == 2
    for share_id in share_ids:
        out = await command(second, second_profile, capsys, "lead", "approve-share", str(share_id))
        assert "open" in out
    # The desk's records are sealed to its own key, not readable as text.
    records = lead_cli.records_path(desk_profile)
    assert LEAD_TEXT.split(".")[0].encode() not in records.read_bytes()

    officer = pair[1]
    officer_state = state_of(room, officer)
    officer_profile = tmp_path / "officer.age"
    out = await command(officer_state, officer_profile, capsys, "assignments")
    assert str(share_ids[1]) in out
    plaintext = await command(officer_state, officer_profile, capsys, "open", str(share_ids[1]))
    assert "Ref: TL-" in plaintext
    await command(officer_state, officer_profile, capsys, "ack", str(share_ids[1]))
    out = await command(
        officer_state,
        officer_profile,
        capsys,
        "outcome",
        str(lead_id),
        "--outcome",
        "raid_done",
        "--arrests",
        "2",
        "--note",
        "owner arrested",
    )
    assert "recorded" in out

    log = await command(desk, desk_profile, capsys, "lead", "log", str(lead_id))
    assert f"{officer.handle} opened share {share_ids[1]}" in log

    leaked = tmp_path / "leak.txt"
    leaked.write_text(leads.paragraphs(plaintext)[1], encoding="utf-8")
    out = await command(desk, desk_profile, capsys, "trace", str(leaked))
    assert out.strip() == f"share {share_ids[1]} officer {uid(officer)} (by wording)"

    out = await command(desk, desk_profile, capsys, "lead", "revoke-share", str(share_ids[0]))
    assert "revoked" in out
    exposure = await command(desk, desk_profile, capsys, "exposure")
    # One lead, clean (a raid, no "target gone"), which both officers could read.
    assert sorted(line.split()[0] for line in exposure.splitlines()) == sorted(
        o.handle for o in pair
    )
    assert all("compromised=0 clean=1" in line for line in exposure.splitlines())
