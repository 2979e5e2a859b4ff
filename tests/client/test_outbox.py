"""The outbox on its own (no server): only ciphertext on disk, one id per report for life, the
sealed report wiped once a receipt that matches it comes back."""

from __future__ import annotations

import base64
import os
import stat
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from pyrage import x25519

from clients.reference_client.api import ApiError, Problem
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.envelope import open_sealed, receipt_hash, sha256_hex
from clients.reference_client.keys import Directory, DirectoryEntry
from clients.reference_client.outbox import (
    OUTDATED_DIRECTORY,
    Outbox,
    OutboxBusy,
    SyncResult,
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
    # The database and any journal SQLite left beside it.
    folder = outbox.path.parent
    return b"".join(
        p.read_bytes() for p in sorted(folder.iterdir()) if p.name.startswith(outbox.path.name)
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
) -> SyncResult:
    return await sync(
        phone.outbox,
        server,
        device=phone.device,
        identity=str(phone.identity),
        fetch_directory=fetch,
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
