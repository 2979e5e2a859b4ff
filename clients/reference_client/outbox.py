"""The operative's outbox: sealed reports wait here until the server acknowledges them.

An operative files a report on a bad network, so `report new` never talks to the server about
the report itself: it pads, age-encrypts to the investigators of the verified key directory and
signs on the spot, and writes the sealed submission here. `sync` then sends every queued
submission, always under the report id chosen at sealing time, until the server answers 201 or
200 with a receipt; the server stores one report per id, so a lost response or a retry can never
make a second report. Once acknowledged, the row is deleted (with SQLite's `secure_delete`, so
the freed pages are zeroed rather than left in the file) and only the receipt stays: report id,
received_at and the receipt hash, which the client recomputes before believing it.

Trade-off, on purpose: the server answers 409 `outdated-directory` when the investigators' keys
changed since sealing, and the report must then be encrypted again to the new directory. The
investigators' ciphertext cannot be opened on the device, so each row also holds the report
encrypted (padded, age) to the device's OWN age identity, which lives only in the
passphrase-encrypted profile. Until acknowledgement, someone who seizes the phone AND gets the
profile passphrase can read the queued reports; without the passphrase they get ciphertext only.
Nothing is ever written here in clear, and the row — that copy included — is wiped on
acknowledgement. Flash storage may still keep stale blocks; only ciphertext ever reached them.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx
import msgspec

from clients.reference_client.api import ApiError
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.envelope import (
    EnvelopeError,
    open_sealed,
    receipt_hash,
    seal,
    sha256_hex,
)
from clients.reference_client.keys import Directory
from clients.reference_client.reports import ReportReceipt, Submission, TipReport, seal_report

OUTBOX_FILE_MODE: Final = 0o600
OUTBOX_SUFFIX: Final = ".outbox.sqlite3"
OUTDATED_DIRECTORY: Final = "urn:tipline:problem:outdated-directory"
# A failed re-seal is not retried in a loop: one new directory per sync is all that can change.
MAX_ATTEMPTS_PER_SYNC: Final = 2

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS outbox (
    report_id TEXT PRIMARY KEY,
    queued_at TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    directory_version INTEGER NOT NULL,
    ciphertext BLOB NOT NULL,
    signature TEXT NOT NULL,
    own_copy BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS receipts (
    report_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    receipt TEXT NOT NULL
);
"""

SendReport = Callable[[Submission], Awaitable[ReportReceipt]]
FetchDirectory = Callable[[], Awaitable[Directory]]


class OutboxError(Exception):
    pass


class OutboxBusy(OutboxError):
    pass


class Queued(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    sent_at: str
    directory_version: int
    ciphertext: bytes
    signature: str
    attempts: int
    last_error: str | None

    def submission(self) -> Submission:
        return Submission(
            report_id=self.report_id,
            sent_at=self.sent_at,
            directory_version=self.directory_version,
            ciphertext=base64.b64encode(self.ciphertext).decode("ascii"),
            signature=self.signature,
        )


class Held(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    reason: str


class SyncResult(msgspec.Struct, frozen=True):
    acknowledged: list[ReportReceipt]
    held: list[Held]
    # Set when the network failed: the rest of the queue waits for the next sync untouched.
    interrupted: str | None = None


def outbox_path(profile_path: Path) -> Path:
    return profile_path.with_name(profile_path.name + OUTBOX_SUFFIX)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _create_private(path: Path) -> None:
    # 0600 from the first byte: SQLite gives its journal the database file's mode.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, OUTBOX_FILE_MODE)
    try:
        os.fchmod(fd, OUTBOX_FILE_MODE)
    finally:
        os.close(fd)


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        _create_private(path)
        # Autocommit; every write below is one explicit IMMEDIATE transaction.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextlib.contextmanager
    def sync_lock(self) -> Iterator[None]:
        """One sync at a time, across processes; a second one is refused, not queued."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, OUTBOX_FILE_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutboxBusy("another sync is running") from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def enqueue(self, submission: Submission, own_copy: bytes) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO outbox (report_id, queued_at, sent_at, directory_version,"
                " ciphertext, signature, own_copy) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    str(submission.report_id),
                    _now(),
                    submission.sent_at,
                    submission.directory_version,
                    base64.b64decode(submission.ciphertext),
                    submission.signature,
                    own_copy,
                ),
            )

    def pending(self) -> list[Queued]:
        rows = self._db.execute(
            "SELECT report_id, sent_at, directory_version, ciphertext, signature, attempts,"
            " last_error FROM outbox ORDER BY queued_at, report_id"
        ).fetchall()
        return [
            Queued(
                report_id=uuid.UUID(r[0]),
                sent_at=r[1],
                directory_version=r[2],
                ciphertext=r[3],
                signature=r[4],
                attempts=r[5],
                last_error=r[6],
            )
            for r in rows
        ]

    def own_copy(self, report_id: uuid.UUID) -> bytes:
        row = self._db.execute(
            "SELECT own_copy FROM outbox WHERE report_id = ?", (str(report_id),)
        ).fetchone()
        if row is None:
            raise OutboxError(f"report {report_id} is not queued")
        copy: bytes = row[0]
        return copy

    def note_attempt(self, report_id: uuid.UUID, error: str | None) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE report_id = ?",
                (error, str(report_id)),
            )

    def replace_sealed(self, submission: Submission) -> None:
        """After a re-seal: same id, same sent_at, new ciphertext and signature."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE outbox SET directory_version = ?, ciphertext = ?, signature = ?"
                " WHERE report_id = ?",
                (
                    submission.directory_version,
                    base64.b64decode(submission.ciphertext),
                    submission.signature,
                    str(submission.report_id),
                ),
            ).rowcount
        if changed != 1:
            raise OutboxError(f"report {submission.report_id} is not queued")

    def acknowledge(self, receipt: ReportReceipt) -> None:
        """Wipes the sealed report and its own copy; keeps only the receipt, atomically."""
        with self._write() as db:
            db.execute("DELETE FROM outbox WHERE report_id = ?", (str(receipt.report_id),))
            db.execute(
                "INSERT OR REPLACE INTO receipts (report_id, received_at, receipt)"
                " VALUES (?, ?, ?)",
                (str(receipt.report_id), receipt.received_at, receipt.receipt),
            )

    def receipts(self) -> list[ReportReceipt]:
        rows = self._db.execute(
            "SELECT report_id, received_at, receipt FROM receipts ORDER BY received_at, report_id"
        ).fetchall()
        return [
            ReportReceipt(report_id=uuid.UUID(r[0]), received_at=r[1], receipt=r[2]) for r in rows
        ]


def queue_report(
    outbox: Outbox,
    device: DeviceKeyPair,
    own_recipient: str,
    directory: Directory,
    report: TipReport,
    report_id: uuid.UUID | None = None,
) -> Submission:
    """Seals now, so nothing readable is ever queued; the id chosen here is the one sent."""
    own_copy = seal(msgspec.json.encode(report), [own_recipient])
    submission = seal_report(device, directory, report, report_id=report_id)
    outbox.enqueue(submission, own_copy)
    return submission


def check_receipt(queued: Queued, receipt: ReportReceipt) -> None:
    """The server's receipt must commit to exactly the bytes this device sent."""
    expected = receipt_hash(
        queued.report_id, receipt.received_at, sha256_hex(queued.ciphertext), queued.signature
    )
    if receipt.report_id != queued.report_id or receipt.receipt != expected:
        raise EnvelopeError("the receipt does not match the report sent")


def reseal(
    outbox: Outbox,
    queued: Queued,
    device: DeviceKeyPair,
    identity: str,
    directory: Directory,
) -> Queued:
    report = msgspec.json.decode(
        open_sealed(outbox.own_copy(queued.report_id), identity), type=TipReport
    )
    submission = seal_report(
        device, directory, report, report_id=queued.report_id, sent_at=queued.sent_at
    )
    outbox.replace_sealed(submission)
    return msgspec.structs.replace(
        queued,
        directory_version=submission.directory_version,
        ciphertext=base64.b64decode(submission.ciphertext),
        signature=submission.signature,
    )


def _hold(outbox: Outbox, queued: Queued, reason: str) -> Held:
    outbox.note_attempt(queued.report_id, reason)
    return Held(queued.report_id, reason)


async def _deliver(
    outbox: Outbox,
    queued: Queued,
    send: SendReport,
    device: DeviceKeyPair,
    identity: str,
    fetch_directory: FetchDirectory,
) -> ReportReceipt | Held:
    current = queued
    for _attempt in range(MAX_ATTEMPTS_PER_SYNC):
        try:
            receipt = await send(current.submission())
        except ApiError as error:
            if error.problem.status in {401, 403}:
                outbox.note_attempt(current.report_id, str(error))
                raise
            if error.problem.type != OUTDATED_DIRECTORY:
                return _hold(outbox, current, str(error))
            # Nothing was stored under this id (the server checks the id before the
            # directory), so the new bytes under the same id cannot conflict.
            directory = await fetch_directory()
            if directory.version <= current.directory_version:
                return _hold(outbox, current, "the server calls the key directory outdated")
            current = reseal(outbox, current, device, identity, directory)
            continue
        try:
            check_receipt(current, receipt)
        except EnvelopeError as error:
            return _hold(outbox, current, str(error))
        outbox.acknowledge(receipt)
        return receipt
    return _hold(outbox, current, "still outdated after re-encrypting")


async def sync(
    outbox: Outbox,
    send: SendReport,
    *,
    device: DeviceKeyPair,
    identity: str,
    fetch_directory: FetchDirectory,
) -> SyncResult:
    """Sends the queue in order; an authentication failure propagates, as nothing else would
    pass, and a network failure stops the sync with the rest of the queue untouched."""
    acknowledged: list[ReportReceipt] = []
    held: list[Held] = []
    with outbox.sync_lock():
        for queued in outbox.pending():
            try:
                outcome = await _deliver(outbox, queued, send, device, identity, fetch_directory)
            except httpx.HTTPError as error:
                outbox.note_attempt(queued.report_id, f"network: {type(error).__name__}")
                return SyncResult(acknowledged, held, interrupted=type(error).__name__)
            if isinstance(outcome, Held):
                held.append(outcome)
            else:
                acknowledged.append(outcome)
    return SyncResult(acknowledged, held)
