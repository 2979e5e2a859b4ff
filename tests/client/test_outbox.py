"""The outbox on its own (no server): only ciphertext on disk, one id per report for life, the
sealed report wiped once a receipt that matches it comes back; attachments sealed beside it,
uploaded before their report and wiped with it."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from pyrage import x25519

from clients.reference_client.api import ApiError, Problem
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.envelope import (
    AttachmentDigest,
    open_sealed,
    receipt_hash,
    report_message,
    sha256_hex,
    verify_signature,
)
from clients.reference_client.evidence import SealedAttachment, UploadGone, attachment_message
from clients.reference_client.keys import Directory, DirectoryEntry
from clients.reference_client.outbox import (
    MAX_ATTACHMENTS,
    OUTDATED_DIRECTORY,
    Outbox,
    OutboxBusy,
    OutboxError,
    SyncResult,
    UploadAttachment,
    outbox_path,
    queue_report,
    sync,
)
from clients.reference_client.reports import ReportReceipt, Submission, TipReport

SECRET = "Girls kept above the karaoke bar on street 51, guard at the back door"
LOCATION = "behind the fish market, blue gate"
RECEIVED_AT = "2026-11-30T07:00:00Z"


class Phone(msgspec.Struct):
    device: DeviceKeyPair
    identity: x25519.Identity
    investigator: x25519.Identity
    directory: Directory
    outbox: Outbox


def directory_for(investigator: x25519.Identity, version: int) -> Directory:
    entry = DirectoryEntry(
        account_id=uuid.uuid4(),
        age_recipient=str(investigator.to_public()),
        device_keys=[DeviceKeyPair.generate().public_jwk()],
        role="investigator",
    )
    return Directory(entries=[entry], issued_at=RECEIVED_AT, version=version)


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Phone]:
    investigator = x25519.Identity.generate()
    outbox = Outbox(outbox_path(tmp_path / "profile.age"))
    try:
        yield Phone(
            device=DeviceKeyPair.generate(),
            identity=x25519.Identity.generate(),
            investigator=investigator,
            directory=directory_for(investigator, 1),
            outbox=outbox,
        )
    finally:
        outbox.close()


def file_bytes(outbox: Outbox) -> bytes:
    # The database, any journal SQLite left beside it, and the sealed attachment files.
    folder = outbox.path.parent
    return b"".join(
        p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0].startswith(outbox.path.name)
    )


def queue(phone: Phone, text: str = SECRET) -> Submission:
    return queue_report(
        phone.outbox,
        phone.device,
        str(phone.identity.to_public()),
        phone.directory,
        TipReport(text=text, location=LOCATION, observed_at="2026-11-29T22:00:00Z"),
    )


def server_receipt(submission: Submission) -> ReportReceipt:
    """What an honest server answers for exactly these bytes."""
    ciphertext = base64.b64decode(submission.ciphertext)
    return ReportReceipt(
        report_id=submission.report_id,
        received_at=RECEIVED_AT,
        receipt=receipt_hash(
            submission.report_id, RECEIVED_AT, sha256_hex(ciphertext), submission.signature
        ),
    )


class Server:
    """A scripted far end: each call pops the next behaviour and records what was sent."""

    def __init__(self, *behaviours: Callable[[Submission], ReportReceipt]) -> None:
        self.behaviours = list(behaviours)
        self.seen: list[Submission] = []

    async def __call__(self, submission: Submission) -> ReportReceipt:
        self.seen.append(submission)
        return self.behaviours.pop(0)(submission)


def network_down(_: Submission) -> ReportReceipt:
    raise httpx.ConnectError("no route to host")


def outdated(_: Submission) -> ReportReceipt:
    raise ApiError(
        Problem(type=OUTDATED_DIRECTORY, title="Encrypted to an outdated key directory", status=409)
    )


def refusal(_: Submission) -> ReportReceipt:
    raise ApiError(Problem(type="urn:tipline:problem:invalid-input", title="no", status=422))


def no_directory() -> Awaitable[Directory]:
    raise AssertionError("the directory must not be fetched")


async def run_sync(
    phone: Phone,
    server: Server,
    fetch: Callable[[], Awaitable[Directory]] = no_directory,
    upload: UploadAttachment | None = None,
) -> SyncResult:
    return await sync(
        phone.outbox,
        server,
        device=phone.device,
        identity=str(phone.identity),
        fetch_directory=fetch,
        upload=upload,
    )


def test_the_outbox_file_holds_no_plaintext_and_is_private(phone: Phone) -> None:
    queue(phone)
    on_disk = file_bytes(phone.outbox)
    for clear in (SECRET, LOCATION, "2026-11-29T22:00:00Z"):
        assert clear.encode() not in on_disk
    assert b"age-encryption.org/v1" in on_disk  # what is there is the sealed report
    assert stat.S_IMODE(os.stat(phone.outbox.path).st_mode) == 0o600


def test_the_queued_report_is_sealed_to_the_investigators(phone: Phone) -> None:
    submission = queue(phone)
    (queued,) = phone.outbox.pending()
    assert queued.submission() == submission
    opened = open_sealed(queued.ciphertext, str(phone.investigator))
    assert msgspec.json.decode(opened, type=TipReport).text == SECRET


async def test_an_acknowledged_report_is_wiped_and_only_its_receipt_kept(phone: Phone) -> None:
    submission = queue(phone)
    ciphertext = base64.b64decode(submission.ciphertext)
    result = await run_sync(phone, Server(server_receipt))
    assert result.acknowledged == [server_receipt(submission)]
    assert phone.outbox.pending() == []
    assert phone.outbox.receipts() == [server_receipt(submission)]
    on_disk = file_bytes(phone.outbox)
    # secure_delete: the freed pages are zeroed, not left holding the report.
    assert ciphertext[-64:] not in on_disk
    assert submission.signature.encode() not in on_disk


async def test_a_failed_send_keeps_the_report_and_the_retry_reuses_its_id(phone: Phone) -> None:
    submission = queue(phone)
    server = Server(network_down, server_receipt)
    first = await run_sync(phone, server)
    assert first.interrupted == "ConnectError"
    assert first.acknowledged == []
    (kept,) = phone.outbox.pending()
    assert kept.submission() == submission
    assert kept.attempts == 1

    second = await run_sync(phone, server)
    assert second.acknowledged == [server_receipt(submission)]
    # Byte for byte the same request: the server's idempotency by id does the rest.
    assert server.seen == [submission, submission]
    assert phone.outbox.pending() == []


async def test_a_network_failure_leaves_the_rest_of_the_queue_untouched(phone: Phone) -> None:
    queue(phone, "one")
    queue(phone, "two")
    server = Server(network_down)
    result = await run_sync(phone, server)
    assert len(server.seen) == 1  # the second was not tried on a dead link
    assert [q.attempts for q in phone.outbox.pending()] == [1, 0]
    assert result.interrupted is not None


async def test_a_refused_report_is_kept_and_the_next_one_still_goes(phone: Phone) -> None:
    refused = queue(phone, "one")
    accepted = queue(phone, "two")
    result = await run_sync(phone, Server(refusal, server_receipt))
    assert [h.report_id for h in result.held] == [refused.report_id]
    assert [r.report_id for r in result.acknowledged] == [accepted.report_id]
    assert [q.report_id for q in phone.outbox.pending()] == [refused.report_id]


async def test_a_receipt_for_other_bytes_is_not_believed(phone: Phone) -> None:
    submission = queue(phone)

    def lying(sent: Submission) -> ReportReceipt:
        return msgspec.structs.replace(server_receipt(sent), receipt="0" * 64)

    result = await run_sync(phone, Server(lying))
    assert result.acknowledged == []
    assert [h.report_id for h in result.held] == [submission.report_id]
    assert phone.outbox.receipts() == []
    assert len(phone.outbox.pending()) == 1


async def test_an_outdated_directory_reseals_under_the_same_id(phone: Phone) -> None:
    submission = queue(phone)
    newcomer = x25519.Identity.generate()
    newer = directory_for(newcomer, 2)

    async def fetch() -> Directory:
        return newer

    server = Server(outdated, server_receipt)
    result = await run_sync(phone, server, fetch)
    first, resent = server.seen
    assert first == submission
    assert (resent.report_id, resent.sent_at) == (submission.report_id, submission.sent_at)
    assert resent.directory_version == 2
    # Re-encrypted from the device's own copy to the new investigator, not the old one.
    opened = open_sealed(base64.b64decode(resent.ciphertext), str(newcomer))
    assert msgspec.json.decode(opened, type=TipReport).text == SECRET
    assert result.acknowledged == [server_receipt(resent)]
    assert phone.outbox.pending() == []


async def test_an_outdated_answer_without_a_newer_directory_keeps_the_report(
    phone: Phone,
) -> None:
    queue(phone)

    async def same() -> Directory:
        return phone.directory

    result = await run_sync(phone, Server(outdated), same)
    assert len(result.held) == 1
    assert len(phone.outbox.pending()) == 1


async def test_an_expired_session_stops_the_sync_and_keeps_everything(phone: Phone) -> None:
    queue(phone)

    def unauthenticated(_: Submission) -> ReportReceipt:
        raise ApiError(Problem(type="urn:tipline:problem:unauthenticated", title="x", status=401))

    with pytest.raises(ApiError):
        await run_sync(phone, Server(unauthenticated))
    assert len(phone.outbox.pending()) == 1


async def test_only_one_sync_runs_at_a_time(phone: Phone) -> None:
    queue(phone)
    with phone.outbox.sync_lock(), pytest.raises(OutboxBusy):
        await run_sync(phone, Server(server_receipt))
    assert len(phone.outbox.pending()) == 1
    # Another process's outbox handle sees the same lock.
    second = Outbox(phone.outbox.path)
    try:
        with second.sync_lock(), pytest.raises(OutboxBusy):
            await run_sync(phone, Server(server_receipt))
    finally:
        second.close()
    assert (await run_sync(phone, Server(server_receipt))).acknowledged


# --- attachments --------------------------------------------------------------------------------

MARKER = b"EVIDENCE-PLAINTEXT-MARKER-"


def evidence_file(folder: Path, name: str, size: int) -> Path:
    """Random bytes with a recognisable marker every 4 KiB."""
    path = folder / name
    block = MARKER + os.urandom(4096 - len(MARKER))
    path.write_bytes((block * (size // 4096 + 1))[:size])
    return path


def queue_with(phone: Phone, files: list[Path], text: str = SECRET) -> Submission:
    return queue_report(
        phone.outbox,
        phone.device,
        str(phone.identity.to_public()),
        phone.directory,
        TipReport(text=text),
        files=files,
    )


def sealed_files(outbox: Outbox) -> list[Path]:
    return sorted(outbox.attachments_dir.iterdir())


def attachment_rows(outbox: Outbox) -> int:
    with sqlite3.connect(outbox.path) as db:
        count: int = db.execute("SELECT count(*) FROM attachments").fetchone()[0]
    return count


class Uploader:
    """A scripted tus server: records what was uploaded, in order, with the report sends."""

    def __init__(self, log: list[str], fail: dict[int, Exception] | None = None) -> None:
        self.log = log
        self.fail = fail or {}
        self.calls = 0

    async def __call__(self, sealed: SealedAttachment) -> None:
        self.calls += 1
        failure = self.fail.get(self.calls)
        if failure is not None:
            raise failure
        # The upload reads the sealed file, so it must still be there, whole.
        assert Path(sealed.ciphertext_path).stat().st_size == sealed.ciphertext_length
        self.log.append(f"upload {sealed.attachment_id}")


class LoggingServer(Server):
    def __init__(self, log: list[str], *behaviours: Callable[[Submission], ReportReceipt]) -> None:
        super().__init__(*behaviours)
        self.log = log

    async def __call__(self, submission: Submission) -> ReportReceipt:
        self.log.append(f"report {submission.report_id}")
        return await super().__call__(submission)


def test_attachments_are_sealed_into_the_outbox_and_the_originals_left_alone(
    phone: Phone, tmp_path: Path
) -> None:
    photo = evidence_file(tmp_path, "photo.jpg", 200_000)
    video = evidence_file(tmp_path, "video.mp4", 1_000_003)
    originals = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (photo, video)}
    submission = queue_with(phone, [photo, video])

    # The user's files are read, never changed or removed.
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (photo, video)} == originals
    on_disk = file_bytes(phone.outbox)
    assert MARKER not in on_disk
    assert SECRET.encode() not in on_disk
    assert stat.S_IMODE(os.stat(phone.outbox.attachments_dir).st_mode) == 0o700
    files = sealed_files(phone.outbox)
    assert len(files) == 2
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)

    (queued,) = phone.outbox.pending()
    assert queued.submission() == submission
    cited = [a.sealed for a in queued.attachments]
    assert [a.uploaded for a in queued.attachments] == [False, False]
    assert [str(c.attachment_id) for c in cited] == [
        a["attachment_id"] for a in submission.attachments
    ]
    for source, sealed in zip((photo, video), cited, strict=True):
        ciphertext = Path(sealed.ciphertext_path).read_bytes()
        assert sha256_hex(ciphertext) == sealed.ciphertext_sha256
        assert len(ciphertext) == sealed.ciphertext_length
        # Sealed to the investigators of the directory, and only to them.
        assert pyrage_decrypt(ciphertext, phone.investigator) == source.read_bytes()
        with pytest.raises(Exception, match="No matching keys"):
            pyrage_decrypt(ciphertext, phone.identity)
        assert sealed.plaintext_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        verify_signature(
            phone.device.public_jwk(),
            attachment_message(
                sealed.attachment_id, sealed.plaintext_sha256, sealed.ciphertext_sha256
            ),
            sealed.signature,
        )
    # The report's signature covers every attachment's id and both digests.
    digests = [
        AttachmentDigest(c.attachment_id, c.plaintext_sha256, c.ciphertext_sha256) for c in cited
    ]
    ciphertext = base64.b64decode(submission.ciphertext)
    signed = report_message(
        submission.report_id, submission.sent_at, sha256_hex(ciphertext), digests
    )
    verify_signature(phone.device.public_jwk(), signed, submission.signature)
    forged = [digests[0], digests[1]._replace(plaintext_sha256="0" * 64)]
    with pytest.raises(Exception, match="does not verify"):
        verify_signature(
            phone.device.public_jwk(),
            report_message(
                submission.report_id, submission.sent_at, sha256_hex(ciphertext), forged
            ),
            submission.signature,
        )


def pyrage_decrypt(ciphertext: bytes, identity: x25519.Identity) -> bytes:
    import pyrage

    plain: bytes = pyrage.decrypt(ciphertext, [identity])
    return plain


async def test_sync_uploads_every_attachment_before_the_report_then_wipes_them(
    phone: Phone, tmp_path: Path
) -> None:
    files = [evidence_file(tmp_path, f"{n}.jpg", 50_000) for n in range(2)]
    submission = queue_with(phone, files)
    ids = [a["attachment_id"] for a in submission.attachments]
    log: list[str] = []
    server = LoggingServer(log, server_receipt)
    result = await run_sync(phone, server, upload=Uploader(log))
    assert log == [f"upload {ids[0]}", f"upload {ids[1]}", f"report {submission.report_id}"]
    assert server.seen == [submission]
    assert result.acknowledged == [server_receipt(submission)]
    assert phone.outbox.pending() == []
    assert sealed_files(phone.outbox) == []
    assert attachment_rows(phone.outbox) == 0
    assert phone.outbox.receipts() == [server_receipt(submission)]
    assert all(f.exists() for f in files)
    # secure_delete: the rows' pages are zeroed; not even the digests of the files stay behind.
    on_disk = file_bytes(phone.outbox)
    for cited in submission.attachments:
        assert cited["plaintext_sha256"].encode() not in on_disk


async def test_an_interrupted_upload_keeps_everything_and_a_restart_resumes(
    phone: Phone, tmp_path: Path
) -> None:
    files = [evidence_file(tmp_path, f"{n}.jpg", 50_000) for n in range(2)]
    submission = queue_with(phone, files)
    ids = [a["attachment_id"] for a in submission.attachments]
    log: list[str] = []
    server = LoggingServer(log, server_receipt)
    cut = Uploader(log, fail={2: httpx.ReadError("connection reset")})
    first = await run_sync(phone, server, upload=cut)
    assert first.interrupted == "ReadError"
    assert server.seen == []  # no report without all its attachments
    assert len(sealed_files(phone.outbox)) == 2
    (queued,) = phone.outbox.pending()
    assert [a.uploaded for a in queued.attachments] == [True, False]

    # The client restarts: a new handle on the same files.
    phone.outbox.close()
    phone.outbox = Outbox(phone.outbox.path)
    second = await run_sync(phone, server, upload=Uploader(log))
    assert log == [f"upload {ids[0]}", f"upload {ids[1]}", f"report {submission.report_id}"]
    assert second.acknowledged == [server_receipt(submission)]
    assert server.seen == [submission]
    assert sealed_files(phone.outbox) == []


async def test_a_refused_upload_holds_its_report_and_an_expired_session_stops_the_sync(
    phone: Phone, tmp_path: Path
) -> None:
    queue_with(phone, [evidence_file(tmp_path, "a.jpg", 10_000)])
    refused = ApiError(Problem(type="urn:tipline:problem:conflict", title="in use", status=409))
    log: list[str] = []
    server = LoggingServer(log, server_receipt)
    result = await run_sync(phone, server, upload=Uploader(log, fail={1: refused}))
    assert [h.reason for h in result.held] == [
        f"attachment {phone.outbox.pending()[0].attachments[0].sealed.attachment_id}: {refused}"
    ]
    assert server.seen == []
    assert len(sealed_files(phone.outbox)) == 1

    expired = ApiError(Problem(type="urn:tipline:problem:unauthenticated", title="x", status=401))
    with pytest.raises(ApiError):
        await run_sync(phone, server, upload=Uploader(log, fail={1: expired}))
    # Without an uploader, a report with attachments is never sent without them.
    held = await run_sync(phone, server)
    assert len(held.held) == 1
    assert server.seen == []
    assert len(sealed_files(phone.outbox)) == 1


async def test_a_resealed_report_still_cites_its_attachments(phone: Phone, tmp_path: Path) -> None:
    submission = queue_with(phone, [evidence_file(tmp_path, "a.jpg", 10_000)])
    newer = directory_for(x25519.Identity.generate(), 2)

    async def fetch() -> Directory:
        return newer

    log: list[str] = []
    server = LoggingServer(log, outdated, server_receipt)
    result = await run_sync(phone, server, fetch, upload=Uploader(log))
    _, resent = server.seen
    assert resent.directory_version == 2
    assert resent.attachments == submission.attachments
    digests = [
        AttachmentDigest(
            uuid.UUID(a["attachment_id"]), a["plaintext_sha256"], a["ciphertext_sha256"]
        )
        for a in resent.attachments
    ]
    ciphertext = base64.b64decode(resent.ciphertext)
    verify_signature(
        phone.device.public_jwk(),
        report_message(resent.report_id, resent.sent_at, sha256_hex(ciphertext), digests),
        resent.signature,
    )
    # Uploaded once, before the first attempt; the re-seal does not upload again.
    assert [entry for entry in log if entry.startswith("upload")] == [
        f"upload {digests[0].attachment_id}"
    ]
    assert result.acknowledged == [server_receipt(resent)]
    assert sealed_files(phone.outbox) == []


def test_a_failed_seal_queues_nothing_and_leaves_no_file(
    phone: Phone, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = evidence_file(tmp_path, "a.jpg", 10_000)
    with pytest.raises(OutboxError, match="not a readable file"):
        queue_with(phone, [good, tmp_path / "missing.jpg"])
    with pytest.raises(OutboxError, match="at most"):
        queue_with(phone, [good] * (MAX_ATTACHMENTS + 1))

    from clients.reference_client.evidence import seal_file as real

    calls: list[Path] = []

    def fails_second(*args: object, **kwargs: object) -> SealedAttachment:
        calls.append(Path(str(args[0])))
        if len(calls) == 2:
            raise OSError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("clients.reference_client.outbox.seal_file", fails_second)
    with pytest.raises(OSError, match="disk full"):
        queue_with(phone, [good, good])
    assert len(calls) == 2
    assert phone.outbox.pending() == []
    assert sealed_files(phone.outbox) == []


def test_a_report_given_up_while_sealing_is_not_queued(phone: Phone, tmp_path: Path) -> None:
    gave_up = threading.Event()
    real = outbox_module_seal_file()

    def user_presses_ctrl_c(*args: object, **kwargs: object) -> SealedAttachment:
        sealed = real(*args, **kwargs)
        gave_up.set()
        return sealed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("clients.reference_client.outbox.seal_file", user_presses_ctrl_c)
        with pytest.raises(OutboxError, match="cancelled"):
            queue_report(
                phone.outbox,
                phone.device,
                str(phone.identity.to_public()),
                phone.directory,
                TipReport(text=SECRET),
                files=[evidence_file(tmp_path, "a.jpg", 10_000)],
                cancelled=gave_up,
            )
    assert phone.outbox.pending() == []
    assert sealed_files(phone.outbox) == []


def outbox_module_seal_file() -> Callable[..., SealedAttachment]:
    from clients.reference_client.evidence import seal_file

    return seal_file


async def test_a_sync_sweeps_sealed_files_no_report_names(phone: Phone, tmp_path: Path) -> None:
    queue_with(phone, [evidence_file(tmp_path, "a.jpg", 10_000)])
    (kept,) = sealed_files(phone.outbox)
    old = phone.outbox.attachments_dir / f"{uuid.uuid4()}.age"
    young = phone.outbox.attachments_dir / f"{uuid.uuid4()}.age"
    old.write_bytes(b"left by a report new that died")
    young.write_bytes(b"a report new still sealing")
    two_hours_ago = time.time() - 7200
    for path in (old, kept):
        os.utime(path, (two_hours_ago, two_hours_ago))
    log: list[str] = []
    await run_sync(phone, LoggingServer(log, refusal), upload=Uploader(log))
    assert sealed_files(phone.outbox) == sorted([kept, young])


async def test_an_upload_the_server_dropped_is_renewed_under_a_new_id_and_signed_again(
    phone: Phone, tmp_path: Path
) -> None:
    files = [evidence_file(tmp_path, f"{n}.jpg", 20_000) for n in range(2)]
    submission = queue_with(phone, files)
    (queued,) = phone.outbox.pending()
    dropped = queued.attachments[0].sealed
    log: list[str] = []
    server = LoggingServer(log, server_receipt)
    uploader = Uploader(log, fail={1: UploadGone("expired while the phone was offline")})
    result = await run_sync(phone, server, upload=uploader)

    (sent,) = server.seen
    assert sent.report_id == submission.report_id
    renewed_id = uuid.UUID(sent.attachments[0]["attachment_id"])
    assert renewed_id != dropped.attachment_id
    # Same sealed bytes and digests, second attachment untouched.
    assert sent.attachments[0]["ciphertext_sha256"] == dropped.ciphertext_sha256
    assert sent.attachments[0]["plaintext_sha256"] == dropped.plaintext_sha256
    assert sent.attachments[1] == submission.attachments[1]
    assert log == [
        f"upload {renewed_id}",
        f"upload {submission.attachments[1]['attachment_id']}",
        f"report {submission.report_id}",
    ]
    # The report and the renewed attachment are signed again over the new id.
    digests = [
        AttachmentDigest(
            uuid.UUID(a["attachment_id"]), a["plaintext_sha256"], a["ciphertext_sha256"]
        )
        for a in sent.attachments
    ]
    ciphertext = base64.b64decode(sent.ciphertext)
    assert ciphertext == base64.b64decode(submission.ciphertext)
    verify_signature(
        phone.device.public_jwk(),
        report_message(sent.report_id, sent.sent_at, sha256_hex(ciphertext), digests),
        sent.signature,
    )
    assert result.acknowledged == [server_receipt(sent)]
    assert sealed_files(phone.outbox) == []


async def test_a_renewed_attachment_survives_a_restart_before_its_upload(
    phone: Phone, tmp_path: Path
) -> None:
    submission = queue_with(phone, [evidence_file(tmp_path, "a.jpg", 20_000)])
    log: list[str] = []
    server = LoggingServer(log, server_receipt)
    gone_then_cut = Uploader(
        log, fail={1: UploadGone("expired"), 2: httpx.ConnectError("no signal")}
    )
    first = await run_sync(phone, server, upload=gone_then_cut)
    assert first.interrupted == "ConnectError"
    (queued,) = phone.outbox.pending()
    renewed = queued.attachments[0].sealed
    assert str(renewed.attachment_id) != submission.attachments[0]["attachment_id"]
    # Only the renamed file is left, under the new id, and the stored record names it.
    assert sealed_files(phone.outbox) == [Path(renewed.ciphertext_path)]
    verify_signature(
        phone.device.public_jwk(),
        attachment_message(
            renewed.attachment_id, renewed.plaintext_sha256, renewed.ciphertext_sha256
        ),
        renewed.signature,
    )
    phone.outbox.close()
    phone.outbox = Outbox(phone.outbox.path)
    second = await run_sync(phone, server, upload=Uploader(log))
    assert [r.report_id for r in second.acknowledged] == [submission.report_id]
    assert server.seen[0].signature == queued.signature
