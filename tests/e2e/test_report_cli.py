"""The report workflow end to end through the reference client: an operative's outbox and sync,
an investigator's show, triage and reply, against a live server and real PostgreSQL.

The in-process tests drive the client's async library (the live server shares their event
loop); one test runs the real `tipline-client` commands against a real `tipline serve`.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import msgspec
import pyotp
import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.api import TiplineClient
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.envelope import EnvelopeError
from clients.reference_client.keys import (
    DirectoryEntry,
    DirectoryError,
    public_key_b64,
    publish_directory,
    root_fingerprint,
    sign_directory_with,
)
from clients.reference_client.outbox import Outbox, outbox_path, sync
from clients.reference_client.profile import Profile, save_profile
from clients.reference_client.report_cli import (
    ProfileState,
    inbox,
    new_report,
    read_message,
    reply,
    show,
    sync_outbox,
    triage,
)
from clients.reference_client.reports import (
    ReportReceipt,
    Submission,
    TipReport,
    seal_message,
    submit,
)
from tests.actors import Actor
from tests.conftest import TestDatabase, free_port, private_dir
from tests.e2e.serving import BIN, Served, postgres_processes
from tests.reports.conftest import Desk, desk

# Re-exported so pytest finds the `desk` fixture here; it lives beside the report tests.
__all__ = ["desk"]

SECRET = "Van with Thai plates collects two girls from the laundry at 23:00"


def profile_of(desk: Desk, actor: Actor) -> Profile:
    """The profile the actor's phone would hold after enrolment and login."""
    assert desk.world.root_key is not None
    root = public_key_b64(desk.world.root_key)
    return Profile(
        server_url=desk.world.base_url,
        handle=actor.handle,
        device_key_pem=actor.device.to_pem().decode("ascii"),
        age_identity=str(actor.age_identity),
        account_id=str(actor.account_id),
        role=actor.role,
        org_root_fingerprint=root_fingerprint(root),
        session_token=actor.token().access_token,
        root_public_key=root,
    )


async def scalar(database: TestDatabase, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(database.admin_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_a_report_goes_from_outbox_to_investigator_once(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        report_id = await new_report(
            operative,
            outbox,
            TipReport(text=SECRET, location="laundry, 3rd st", observed_at="2026-11-29T22:00:00Z"),
        )
        # Queued, not sent: nothing reached the server yet.
        assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 0
        first = await sync_outbox(operative, outbox)
        second = await sync_outbox(operative, outbox)
        receipts = outbox.receipts()
    (receipt,) = first.acknowledged
    assert receipt.report_id == report_id
    assert second.acknowledged == []
    assert second.held == []
    assert receipts == [receipt]
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 1
    stored = await scalar(database, "SELECT receipt FROM tipline.reports WHERE id = $1", report_id)
    assert stored == receipt.receipt

    shown = await show(ProfileState(profile_of(desk, desk.investigator)), report_id)
    assert shown.report.text == SECRET
    assert shown.report.location == "laundry, 3rd st"
    assert shown.report.observed_at == "2026-11-29T22:00:00Z"
    assert shown.report.reply_to == str(desk.operative.age_identity.to_public())
    assert shown.received_at == receipt.received_at


async def test_a_lost_response_is_retried_under_the_same_id(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        report_id = await new_report(operative, outbox, TipReport(text=SECRET))
        async with operative.client() as client:

            async def answer_lost(submission: Submission) -> ReportReceipt:
                await submit(client, operative.token, submission)
                raise httpx.ReadTimeout("the server stored it; the answer never arrived")

            async def no_fetch() -> object:
                raise AssertionError("no directory change here")

            lost = await sync(
                outbox,
                answer_lost,
                device=operative.profile.device_key(),
                identity=operative.profile.age_identity,
                fetch_directory=no_fetch,  # type: ignore[arg-type]
            )
        assert lost.interrupted == "ReadTimeout"
        assert [q.report_id for q in outbox.pending()] == [report_id]
        retried = await sync_outbox(operative, outbox)
        assert outbox.pending() == []
    (receipt,) = retried.acknowledged
    assert receipt.report_id == report_id
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 1
    stored = await scalar(database, "SELECT receipt FROM tipline.reports WHERE id = $1", report_id)
    assert stored == receipt.receipt


async def test_a_report_written_offline_waits_in_the_outbox(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    online = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        await new_report(online, outbox, TipReport(text="written while online"))
        # The same phone, out of coverage: the directory it verified last seals the report.
        dead = f"http://127.0.0.1:{free_port()}"
        offline = ProfileState(msgspec.structs.replace(online.profile, server_url=dead))
        report_id = await new_report(offline, outbox, TipReport(text=SECRET))
        result = await sync_outbox(offline, outbox)
        assert result.interrupted == "ConnectError"
        assert len(outbox.pending()) == 2
        assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 0

        back = await sync_outbox(online, outbox)
    assert report_id in [r.report_id for r in back.acknowledged]
    assert len(back.acknowledged) == 2
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 2


async def test_a_report_sealed_before_the_team_changed_is_resealed_at_sync(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        report_id = await new_report(operative, outbox, TipReport(text=SECRET))
        newcomer = await desk.world.invited(desk.investigator, "investigator")
        await desk.world.publish_directory(desk.investigator, [desk.investigator, newcomer])
        result = await sync_outbox(operative, outbox)
    assert [r.report_id for r in result.acknowledged] == [report_id]
    assert operative.profile.directory_version_seen == 2
    assert await scalar(database, "SELECT directory_version FROM tipline.reports") == 2
    # The new investigator, absent when the report was written, can read it.
    shown = await show(ProfileState(profile_of(desk, newcomer)), report_id)
    assert shown.report.text == SECRET


async def test_a_directory_that_goes_backwards_or_is_not_root_signed_is_refused(
    desk: Desk, tmp_path: Path
) -> None:
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        ahead = msgspec.structs.replace(profile_of(desk, desk.operative), directory_version_seen=2)
        with pytest.raises(DirectoryError, match="older"):
            await new_report(ProfileState(ahead), outbox, TipReport(text=SECRET))

        impostor = public_key_b64(Ed25519PrivateKey.generate())
        unpinned = msgspec.structs.replace(
            profile_of(desk, desk.operative), root_public_key=None, org_root_fingerprint=None
        )
        state = ProfileState(unpinned)
        state.pin_root_key(impostor)
        with pytest.raises(DirectoryError, match="not signed"):
            await new_report(state, outbox, TipReport(text=SECRET))
        assert outbox.pending() == []

    pinned = ProfileState(
        msgspec.structs.replace(profile_of(desk, desk.operative), root_public_key=None)
    )
    with pytest.raises(DirectoryError, match="fingerprint"):
        pinned.pin_root_key(impostor)


async def test_reply_round_trip_and_triage(desk: Desk, tmp_path: Path) -> None:
    operative = ProfileState(profile_of(desk, desk.operative))
    investigator = ProfileState(profile_of(desk, desk.investigator))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        report_id = await new_report(operative, outbox, TipReport(text=SECRET))
        await sync_outbox(operative, outbox)

    question = "Which laundry? Send the street number."
    question_id = await reply(investigator, report_id, question)
    (item,) = await inbox(operative)
    assert (item["id"], item["read"]) == (str(question_id), False)
    assert await read_message(operative, question_id) == question
    assert [m["read"] for m in await inbox(operative)] == [True]

    answer = "Number 14, side door."
    answer_id = await reply(operative, report_id, answer)
    assert await read_message(investigator, answer_id) == answer

    moved = await triage(investigator, report_id, "in_review", 2)
    assert (moved["status"], moved["priority"]) == ("in_review", 2)
    assert (await show(investigator, report_id)).status == "in_review"


async def test_a_message_from_a_device_outside_the_directory_is_refused(
    desk: Desk, tmp_path: Path
) -> None:
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(tmp_path / "profile.age")) as outbox:
        report_id = await new_report(operative, outbox, TipReport(text=SECRET))
        await sync_outbox(operative, outbox)
    # An investigator account the root key never vouched for writes to the operative.
    outsider = await desk.world.invited(desk.investigator, "investigator")
    assert desk.world.directory is not None
    recipients = [
        *desk.world.directory.investigator_recipients(),
        str(desk.operative.age_identity.to_public()),
    ]
    body = seal_message(
        outsider.device, recipients, desk.world.directory.version, report_id, "come alone"
    )
    sent = await outsider.client.call(
        "POST", f"/v1/reports/{report_id}/messages", outsider.token(), json=body
    )
    assert sent.status_code == 201
    with pytest.raises(EnvelopeError, match="key directory"):
        await read_message(operative, uuid.UUID(body["message_id"]))
    assert [m["read"] for m in await inbox(operative)] == [False]


# --- the real commands against the real server process -----------------------------------------


class Person(msgspec.Struct):
    profile: Profile
    passphrase: str
    path: Path


@pytest.fixture
def root_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def served(root_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    monkeypatch.setenv("TIPLINE_ROOT_PUBLIC_KEY", public_key_b64(root_key))
    folder = private_dir("report-cli")
    server = Served(folder / "var")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop(signal.SIGTERM)
        for proc in postgres_processes(folder / "var" / "pgdata"):
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)


async def enrol(
    url: str, code: str, root: str
) -> tuple[Profile, TiplineClient, str, pyrage.x25519.Identity]:
    device = DeviceKeyPair.generate()
    identity = pyrage.x25519.Identity.generate()
    client = TiplineClient(url, device)
    password = secrets.token_urlsafe(18)
    enrolment = await client.enrol(code, password, str(identity.to_public()))
    totp = pyotp.TOTP(parse_qs(urlsplit(enrolment.otpauth_uri).query)["secret"][0])
    await client.confirm_enrolment(enrolment.account_id, totp.at(time.time() - 30))
    session = await client.login(enrolment.handle, password, totp.now())
    profile = Profile(
        server_url=url,
        handle=enrolment.handle,
        device_key_pem=device.to_pem().decode("ascii"),
        age_identity=str(identity),
        account_id=str(enrolment.account_id),
        role=enrolment.role,
        org_root_fingerprint=root_fingerprint(root),
        session_token=session.access_token,
    )
    return profile, client, session.access_token, identity


def bootstrap_code(served: Served) -> str:
    bootstrap = subprocess.run(
        [BIN / "tipline", "admin", "create-first-investigator", "--handle", "director"],
        env={**os.environ, "TIPLINE_DATA_DIR": str(served.data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bootstrap.returncode == 0, bootstrap.stderr
    code: str = msgspec.json.decode(bootstrap.stdout.strip().splitlines()[-1])["payload"]["code"]
    return code


async def staff(served: Served, root_key: Ed25519PrivateKey, code: str) -> list[Profile]:
    """The director enrols, invites an operative, and publishes the root-signed directory."""
    root = public_key_b64(root_key)
    director, client, token, identity = await enrol(served.url, code, root)
    try:
        invite = await client.invite(token, "operative", "sparrow")  # type: ignore[arg-type]
        operative, operative_client, _, _ = await enrol(served.url, invite.code, root)
        await operative_client.__aexit__()
        entry = DirectoryEntry(
            account_id=uuid.UUID(director.account_id or ""),
            role="investigator",
            age_recipient=str(identity.to_public()),
            device_keys=[director.device_key().public_jwk()],
        )
        await publish_directory(client, token, sign_directory_with(root_key, 1, [entry]))
    finally:
        await client.__aexit__()
    return [director, operative]


def tipline_client(person: Person, *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [BIN / "tipline-client", "--profile", str(person.path), *args],
        input=f"{person.passphrase}\n{stdin}",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_commands_carry_a_report_and_a_reply(
    served: Served, root_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    director_profile, operative_profile = asyncio.run(
        staff(served, root_key, bootstrap_code(served))
    )
    people = []
    for name, profile in (("director", director_profile), ("operative", operative_profile)):
        person = Person(profile, secrets.token_urlsafe(12), tmp_path / f"{name}.age")
        save_profile(person.path, person.profile, person.passphrase)
        people.append(person)
    director, operative = people
    root = public_key_b64(root_key)

    # The text goes in on standard input, never on the command line.
    queued = tipline_client(
        operative, "report", "new", "--root-public-key", root, "--location", "pier 4", stdin=SECRET
    )
    report_id = re.fullmatch(r"queued (\S+)\n", queued)[1]  # type: ignore[index]
    outbox_file = outbox_path(operative.path)
    assert SECRET.encode() not in outbox_file.read_bytes()

    synced = tipline_client(operative, "sync")
    assert synced.startswith(f"received {report_id} at ")
    receipt = synced.split()[-1]
    assert tipline_client(operative, "sync") == "outbox empty\n"
    with sqlite3.connect(outbox_file) as db:
        assert db.execute("SELECT report_id, receipt FROM receipts").fetchall() == [
            (report_id, receipt)
        ]
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)

    listed = tipline_client(director, "queue")
    assert [line.split()[0] for line in listed.splitlines()] == [report_id]
    shown = tipline_client(director, "show", report_id)
    assert "device signature verified" in shown
    assert "location: pier 4" in shown
    assert shown.endswith(f"text:\n{SECRET}\n")

    sent = tipline_client(
        director, "reply", report_id, "--root-public-key", root, stdin="Who drives the van?"
    )
    message_id = sent.split()[-1]
    (line,) = tipline_client(operative, "inbox").splitlines()
    assert line.startswith(f"{message_id} unread")
    assert tipline_client(operative, "inbox", "--read", message_id) == "Who drives the van?\n"
