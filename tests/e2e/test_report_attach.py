"""Evidence through the reference client's outbox, against a live server and real PostgreSQL:
`report new --attach` seals the files into the outbox, `sync` uploads them with tus (resuming
from the server's offset after a dropped connection or a client restart) and only then sends
the report that signs their digests; the investigator gets both files back bit for bit.

The dropped connections are real: the client talks to the server through a TCP relay on
loopback that cuts both sockets mid-upload, after a chosen number of bytes. The last test runs
the real `tipline-client` commands against a real `tipline serve`, kills the client process
(SIGKILL) in the middle of its upload, and restarts the server before the client resumes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path
from uuid import UUID, uuid4

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.envelope import EnvelopeError
from clients.reference_client.evidence import EvidenceClient, SealedAttachment
from clients.reference_client.keys import public_key_b64
from clients.reference_client.outbox import Outbox, attachments_dir, outbox_path
from clients.reference_client.profile import save_profile
from clients.reference_client.report_cli import (
    ProfileState,
    new_report,
    save_attachments,
    show,
    sync_outbox,
)
from clients.reference_client.reports import TipReport, open_report
from tests.conftest import TestDatabase
from tests.e2e.serving import BIN, Served
from tests.e2e.test_report_cli import (
    Person,
    bootstrap_code,
    profile_of,
    root_key,
    scalar,
    served,
    staff,
    tipline_client,
)
from tests.reports.conftest import Desk, desk

# Re-exported so pytest finds the fixtures here.
__all__ = ["desk", "root_key", "served"]

MiB = 2**20
MARKER = b"TIPLINE-ATTACHMENT-PLAINTEXT-"
SECRET = "Two trucks unload at the cold store on pier 9; photos and a video attached"
# Request lines, headers and DPoP proofs of a few tus requests: far below one chunk of data.
HEADER_SLACK = 64 * 1024


def evidence_file(path: Path, size: int) -> bytes:
    """Random bytes with a recognisable marker every 4 KiB; returns the content."""
    block = MARKER + os.urandom(4096 - len(MARKER))
    data = (block * (size // 4096 + 1))[:size]
    path.write_bytes(data)
    return data


def outbox_bytes(profile: Path) -> bytes:
    """Everything the client stored: the outbox database, its journal, the sealed files."""
    folder = profile.parent
    return b"".join(
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0].startswith(profile.name + ".")
    )


class Relay:
    """A TCP relay to the server that can cut the connection after `cut_after` more bytes
    from the client, and counts every byte the client got through to the server."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.sent = 0
        self.cut_after: int | None = None
        self.cuts = 0
        # A slow uplink: a pause after each block sent towards the server.
        self.delay_s = 0.0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(*self.upstream)

        def cut() -> None:
            client_w.transport.abort()
            server_w.transport.abort()

        async def to_server() -> None:
            while data := await client_r.read(65536):
                if self.cut_after is not None and len(data) >= self.cut_after:
                    server_w.write(data[: self.cut_after])
                    await server_w.drain()
                    self.sent += self.cut_after
                    self.cut_after = None
                    self.cuts += 1
                    # Let the server read what arrived before the connection dies.
                    await asyncio.sleep(0.2)
                    cut()
                    return
                if self.cut_after is not None:
                    self.cut_after -= len(data)
                self.sent += len(data)
                server_w.write(data)
                await server_w.drain()
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
            server_w.close()

        async def to_client() -> None:
            while data := await server_r.read(65536):
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        await asyncio.gather(to_server(), to_client(), return_exceptions=True)


def through(desk: Desk, relay: Relay, actor: str = "operative") -> ProfileState:
    profile = profile_of(desk, getattr(desk, actor))
    return ProfileState(msgspec.structs.replace(profile, server_url=relay.url))


async def settled_offset(state: ProfileState, attachment_id: UUID) -> int:
    """The server's offset once the interrupted PATCH has been wound up (it stops moving)."""
    async with state.client() as client, EvidenceClient(client) as evidence:
        previous = None
        for _ in range(100):
            head = await evidence.offset(state.token, attachment_id)
            assert head is not None
            if head[0] == previous:
                return previous
            previous = head[0]
            await asyncio.sleep(0.2)
    raise AssertionError("the upload's offset did not settle")


def queued_attachments(profile: Path) -> list[SealedAttachment]:
    with sqlite3.connect(outbox_path(profile)) as db:
        rows = db.execute("SELECT sealed FROM attachments ORDER BY position").fetchall()
    return [msgspec.json.decode(r[0], type=SealedAttachment) for r in rows]


async def test_two_attachments_reach_the_investigator_bit_for_bit(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    photo, video = tmp_path / "photo.jpg", tmp_path / "video.mp4"
    originals = [evidence_file(photo, 300_001), evidence_file(video, 3 * MiB + 17)]
    phone = tmp_path / "phone" / "profile.age"
    phone.parent.mkdir()
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(phone)) as outbox:
        report_id = await new_report(
            operative, outbox, TipReport(text=SECRET), attach=[photo, video]
        )
        # Queued, not sent; the outbox holds no byte of the files in clear.
        assert await scalar(database, "SELECT count(*) FROM tipline.attachments") == 0
        assert MARKER not in outbox_bytes(phone)
        assert SECRET.encode() not in outbox_bytes(phone)
        started: list[UUID] = []
        progress: list[tuple[int, int]] = []

        def on_upload(sealed: SealedAttachment) -> object:
            started.append(sealed.attachment_id)
            return lambda done, total: progress.append((done, total))

        result = await sync_outbox(operative, outbox, on_upload=on_upload)  # type: ignore[arg-type]
        assert [r.report_id for r in result.acknowledged] == [report_id]
        assert outbox.pending() == []
        assert [r.report_id for r in outbox.receipts()] == [report_id]
    # The sealed files are gone with the report; the user's files are untouched.
    assert list(attachments_dir(outbox_path(phone)).iterdir()) == []
    assert [photo.read_bytes(), video.read_bytes()] == originals
    assert len(started) == 2
    assert progress[-1][0] == progress[-1][1]
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 1
    assert (
        await scalar(
            database,
            "SELECT count(*) FROM tipline.attachments WHERE report_id = $1 AND status = 'complete'",
            report_id,
        )
        == 2
    )

    investigator = ProfileState(profile_of(desk, desk.investigator))
    # show verifies the device signature over the report, attachment lines included.
    shown = await show(investigator, report_id)
    assert shown.report.text == SECRET
    assert sorted(a.attachment_id for a in shown.attachments) == sorted(started)
    by_id = {
        a.attachment_id: a.plaintext_sha256 for a in shown.attachments
    }  # what the device signed
    saved = await save_attachments(investigator, shown, tmp_path / "case")
    contents = sorted(p.read_bytes() for p in saved)
    assert contents == sorted(originals)
    for path in saved:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == by_id[UUID(path.name)]


async def test_a_forged_attachment_line_fails_the_report_signature(
    desk: Desk, tmp_path: Path
) -> None:
    photo = tmp_path / "photo.jpg"
    evidence_file(photo, 100_000)
    phone = tmp_path / "profile.age"
    operative = ProfileState(profile_of(desk, desk.operative))
    with Outbox(outbox_path(phone)) as outbox:
        report_id = await new_report(operative, outbox, TipReport(text=SECRET), attach=[photo])
        await sync_outbox(operative, outbox)
    investigator = ProfileState(profile_of(desk, desk.investigator))
    async with investigator.client() as client:
        response = await client.call("GET", f"/v1/reports/{report_id}", investigator.token)
    detail = response.json()
    assert open_report(detail, investigator.profile.age_identity).text == SECRET
    # A server that swaps a digest, drops or adds an attachment is caught by the signature.
    (cited,) = detail["attachments"]
    for forged in (
        [{**cited, "plaintext_sha256": "0" * 64}],
        [{**cited, "ciphertext_sha256": "0" * 64}],
        [],
        [cited, {**cited, "attachment_id": str(uuid4())}],
    ):
        with pytest.raises(EnvelopeError, match="signature does not verify"):
            open_report({**detail, "attachments": forged}, investigator.profile.age_identity)


async def test_a_dropped_connection_resumes_where_the_server_stands(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    small, large = tmp_path / "a.jpg", tmp_path / "b.mp4"
    originals = [evidence_file(small, 1 * MiB), evidence_file(large, 6 * MiB)]
    phone = tmp_path / "profile.age"
    async with Relay(desk.world.base_url) as relay:
        operative = through(desk, relay)
        with Outbox(outbox_path(phone)) as outbox:
            report_id = await new_report(
                operative, outbox, TipReport(text=SECRET), attach=[small, large]
            )
            lengths = sum(a.ciphertext_length for a in queued_attachments(phone))
            relay.sent = 0
            # Cut mid-way through the second file's body; the client retries in-process.
            relay.cut_after = 4 * MiB
            result = await sync_outbox(operative, outbox)
        assert relay.cuts == 1
    assert [r.report_id for r in result.acknowledged] == [report_id]
    # Nothing the server already had was sent again.
    assert relay.sent <= lengths + HEADER_SLACK
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 1
    shown = await show(ProfileState(profile_of(desk, desk.investigator)), report_id)
    saved = await save_attachments(
        ProfileState(profile_of(desk, desk.investigator)), shown, tmp_path / "case"
    )
    assert sorted(p.read_bytes() for p in saved) == sorted(originals)


async def test_a_restarted_client_resumes_the_upload_and_sends_the_report_once(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    small, large = tmp_path / "a.jpg", tmp_path / "b.mp4"
    originals = [evidence_file(small, 1 * MiB), evidence_file(large, 6 * MiB)]
    phone = tmp_path / "profile.age"
    async with Relay(desk.world.base_url) as relay:
        first_run = through(desk, relay)
        with Outbox(outbox_path(phone)) as outbox:
            report_id = await new_report(
                first_run, outbox, TipReport(text=SECRET), attach=[small, large]
            )
            first, second = queued_attachments(phone)
            relay.cut_after = first.ciphertext_length + 3 * MiB
            # No retries: the connection dies and the client with it.
            interrupted = await sync_outbox(first_run, outbox, retries=0)
            assert interrupted.interrupted is not None
            assert interrupted.acknowledged == []
        assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 0
        offset = await settled_offset(first_run, second.attachment_id)
        assert 2 * MiB < offset < second.ciphertext_length

        # A new process: a fresh profile state and outbox handle over the same files.
        relay.sent = 0
        restarted = through(desk, relay)
        progress: list[int] = []
        with Outbox(outbox_path(phone)) as outbox:
            result = await sync_outbox(
                restarted,
                outbox,
                on_upload=lambda sealed: lambda done, total: progress.append(done),
            )
        # Only the rest of the second file went over the wire, then the report.
        remainder = second.ciphertext_length - offset
        assert remainder <= relay.sent <= remainder + HEADER_SLACK
        assert progress[-1] == second.ciphertext_length
    assert [r.report_id for r in result.acknowledged] == [report_id]
    assert await scalar(database, "SELECT count(*) FROM tipline.reports") == 1
    assert list(attachments_dir(outbox_path(phone)).iterdir()) == []
    investigator = ProfileState(profile_of(desk, desk.investigator))
    shown = await show(investigator, report_id)
    saved = await save_attachments(investigator, shown, tmp_path / "case")
    assert sorted(p.read_bytes() for p in saved) == sorted(originals)


async def test_an_upload_that_expired_while_offline_is_renewed_and_the_report_lands(
    desk: Desk, database: TestDatabase, tmp_path: Path
) -> None:
    original = evidence_file(tmp_path / "a.jpg", 3 * MiB)
    phone = tmp_path / "profile.age"
    async with Relay(desk.world.base_url) as relay:
        first_run = through(desk, relay)
        with Outbox(outbox_path(phone)) as outbox:
            report_id = await new_report(
                first_run, outbox, TipReport(text=SECRET), attach=[tmp_path / "a.jpg"]
            )
            (sealed,) = queued_attachments(phone)
            relay.cut_after = 1 * MiB
            assert (await sync_outbox(first_run, outbox, retries=0)).interrupted is not None
        assert await settled_offset(first_run, sealed.attachment_id) > 0
        # The phone stays out of coverage past the upload's expiry.
        await scalar(
            database,
            "UPDATE tipline.attachments SET expires_at = now() - interval '1 second' WHERE id = $1",
            sealed.attachment_id,
        )
        with Outbox(outbox_path(phone)) as outbox:
            result = await sync_outbox(through(desk, relay), outbox)
    assert [r.report_id for r in result.acknowledged] == [report_id]
    assert list(attachments_dir(outbox_path(phone)).iterdir()) == []
    investigator = ProfileState(profile_of(desk, desk.investigator))
    shown = await show(investigator, report_id)
    (cited,) = shown.attachments
    assert cited.attachment_id != sealed.attachment_id
    assert (cited.plaintext_sha256, cited.ciphertext_sha256) == (
        sealed.plaintext_sha256,
        sealed.ciphertext_sha256,
    )
    (saved,) = await save_attachments(investigator, shown, tmp_path / "case")
    assert saved.read_bytes() == original


class ThreadedRelay:
    """The relay on its own event loop, for client processes started by the test."""

    def __init__(self, upstream: str) -> None:
        self.relay = Relay(upstream)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        ready = threading.Event()

        async def main() -> None:
            async with self.relay:
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),))
        self._thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


def test_the_commands_attach_upload_resume_after_a_kill_and_verify(
    served: Served, root_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    director_profile, operative_profile = asyncio.run(
        staff(served, root_key, bootstrap_code(served))
    )
    relay = ThreadedRelay(served.url)
    try:
        operative = Person(
            msgspec.structs.replace(operative_profile, server_url=relay.relay.url),
            secrets.token_urlsafe(12),
            tmp_path / "phone" / "operative.age",
        )
        director = Person(director_profile, secrets.token_urlsafe(12), tmp_path / "director.age")
        operative.path.parent.mkdir()
        for person in (operative, director):
            save_profile(person.path, person.profile, person.passphrase)
        photo, video = tmp_path / "photo.jpg", tmp_path / "video.mp4"
        originals = [evidence_file(photo, 200_003), evidence_file(video, 12 * MiB)]

        root = public_key_b64(root_key)
        queued = tipline_client(
            operative,
            "report",
            "new",
            "--root-public-key",
            root,
            "--attach",
            str(photo),
            str(video),
            stdin=SECRET,
        )
        report_id = re.fullmatch(r"queued (\S+) with 2 attachment\(s\)\n", queued)[1]  # type: ignore[index]
        assert MARKER not in outbox_bytes(operative.path)
        assert [photo.read_bytes(), video.read_bytes()] == originals
        small, large = queued_attachments(operative.path)

        # The phone loses power in the middle of the video's upload.
        relay.relay.delay_s = 0.01
        syncing = subprocess.Popen(
            [BIN / "tipline-client", "--profile", str(operative.path), "sync"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert syncing.stdin is not None
        syncing.stdin.write(f"{operative.passphrase}\n".encode())
        syncing.stdin.close()
        deadline = time.monotonic() + 120
        while relay.relay.sent < small.ciphertext_length + 4 * MiB:
            assert syncing.poll() is None, "the sync ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        syncing.send_signal(signal.SIGKILL)
        syncing.wait(30)
        relay.relay.delay_s = 0.0

        server_side = ProfileState(
            msgspec.structs.replace(operative_profile, server_url=served.url)
        )
        offset = asyncio.run(settled_offset(server_side, large.attachment_id))
        assert 2 * MiB < offset < large.ciphertext_length
        # The server restarts too (a deploy, a crash) before the phone comes back: the upload's
        # state lives in PostgreSQL and the evidence folder, so nothing of it is lost.
        served.restart()
        assert asyncio.run(settled_offset(server_side, large.attachment_id)) == offset

        relay.relay.sent = 0
        done = subprocess.run(
            [BIN / "tipline-client", "--profile", str(operative.path), "sync"],
            input=f"{operative.passphrase}\n",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"received {report_id} at ")
        assert f"uploading attachment {large.attachment_id}" in done.stderr
        assert "100%" in done.stderr
        remainder = large.ciphertext_length - offset
        assert remainder <= relay.relay.sent <= remainder + HEADER_SLACK
    finally:
        relay.close()

    assert tipline_client(operative, "sync") == "outbox empty\n"
    assert list(attachments_dir(outbox_path(operative.path)).iterdir()) == []
    with sqlite3.connect(outbox_path(operative.path)) as db:
        assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM attachments").fetchone() == (0,)
        assert db.execute("SELECT report_id FROM receipts").fetchall() == [(report_id,)]

    case = tmp_path / "case"
    shown = tipline_client(director, "show", report_id, "--save-attachments", str(case))
    assert "device signature verified" in shown
    for sealed in (small, large):
        assert (
            f"attachment {sealed.attachment_id} {sealed.plaintext_sha256}"
            f" {sealed.ciphertext_sha256}" in shown
        )
        assert f"saved {case / str(sealed.attachment_id)} (both digests match)" in shown
    assert (case / str(small.attachment_id)).read_bytes() == originals[0]
    assert (case / str(large.attachment_id)).read_bytes() == originals[1]
    assert shown.endswith(f"text:\n{SECRET}\n")
