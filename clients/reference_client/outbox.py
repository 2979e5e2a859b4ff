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

Evidence (`report new --attach FILE`): each file is age-encrypted, streaming, to the same
investigators as the report, into a private folder beside this database; its digests, signed by
the device, go into the report's signed message. The user's file is read once and left alone;
the outbox holds only ciphertext. `sync` uploads every attachment of a report with tus before it
sends the report (the server accepts a report only citing complete uploads), resuming from the
server's offset, so a dropped connection or a restart never resends what arrived. The ciphertext
files are deleted once the report is acknowledged.

Trade-off, on purpose: an attachment is encrypted once, to the directory current at `report
new`, and no copy for the device is kept (a video twice over is too much for a phone, and a
device-readable copy on the server would outlive the outbox). When the directory changes before
sync, the report is re-encrypted but its attachments stay readable only by the investigators
they were sealed to.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from clients.reference_client.api import ApiError
from clients.reference_client.device import DeviceKeyPair, b64url
from clients.reference_client.envelope import (
    AttachmentDigest,
    EnvelopeError,
    open_sealed,
    receipt_hash,
    seal,
    sha256_hex,
    sign_report,
)
from clients.reference_client.evidence import (
    EvidenceError,
    SealedAttachment,
    UploadGone,
    attachment_message,
    seal_file,
)
from clients.reference_client.keys import Directory
from clients.reference_client.reports import ReportReceipt, Submission, TipReport, seal_report

OUTBOX_FILE_MODE: Final = 0o600
OUTBOX_SUFFIX: Final = ".outbox.sqlite3"
ATTACHMENTS_SUFFIX: Final = ".attachments"
ATTACHMENTS_DIR_MODE: Final = 0o700
CIPHERTEXT_SUFFIX: Final = ".age"
# The server's limit per report (docs/protocol.md §3.3); refused here before any sealing.
MAX_ATTACHMENTS: Final = 32
# A ciphertext file no row names is left by a `report new` that died before queueing, or a sync
# that died between acknowledging and deleting. One still being written by a concurrent `report
# new` is young, so only files untouched for this long are removed.
ORPHAN_GRACE_S: Final = 3600
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
CREATE TABLE IF NOT EXISTS attachments (
    attachment_id TEXT PRIMARY KEY,
    report_id TEXT NOT NULL REFERENCES outbox (report_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    UNIQUE (report_id, position)
);
CREATE TABLE IF NOT EXISTS receipts (
    report_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    receipt TEXT NOT NULL
);
"""

SendReport = Callable[[Submission], Awaitable[ReportReceipt]]
FetchDirectory = Callable[[], Awaitable[Directory]]
# Uploads (or resumes) one sealed attachment until the server holds all of it.
UploadAttachment = Callable[[SealedAttachment], Awaitable[None]]


class OutboxError(Exception):
    pass


class OutboxBusy(OutboxError):
    pass


class QueuedAttachment(msgspec.Struct, frozen=True):
    sealed: SealedAttachment
    uploaded: bool


class Queued(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    sent_at: str
    directory_version: int
    ciphertext: bytes
    signature: str
    attempts: int
    last_error: str | None
    # In the order given at `report new`; the signed message lists them sorted by id.
    attachments: tuple[QueuedAttachment, ...] = ()

    def digests(self) -> list[AttachmentDigest]:
        return [
            AttachmentDigest(
                a.sealed.attachment_id, a.sealed.plaintext_sha256, a.sealed.ciphertext_sha256
            )
            for a in self.attachments
        ]

    def submission(self) -> Submission:
        return Submission(
            report_id=self.report_id,
            sent_at=self.sent_at,
            directory_version=self.directory_version,
            ciphertext=base64.b64encode(self.ciphertext).decode("ascii"),
            signature=self.signature,
            attachments=_cited(self.digests()),
        )


def _cited(digests: Sequence[AttachmentDigest]) -> list[Any]:
    return [
        {
            "attachment_id": str(d.attachment_id),
            "plaintext_sha256": d.plaintext_sha256,
            "ciphertext_sha256": d.ciphertext_sha256,
        }
        for d in digests
    ]


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


def attachments_dir(path: Path) -> Path:
    """The folder of sealed attachment files beside the outbox database at `path`."""
    return path.with_name(path.name + ATTACHMENTS_SUFFIX)


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
        # Autocommit; every write below is one explicit IMMEDIATE transaction. Sealing a video
        # runs in a worker thread (queue_report via asyncio.to_thread), which then queues it:
        # one thread at a time, never two at once, on a serialized-mode SQLite.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)
        self.attachments_dir = attachments_dir(path)
        self.attachments_dir.mkdir(mode=ATTACHMENTS_DIR_MODE, exist_ok=True)
        os.chmod(self.attachments_dir, ATTACHMENTS_DIR_MODE)

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

    def ciphertext_path(self, attachment_id: uuid.UUID) -> Path:
        # Derived from the id, never read back from the database, so a moved profile folder
        # still finds its files and no row can point a deletion elsewhere.
        return self.attachments_dir / f"{attachment_id}{CIPHERTEXT_SUFFIX}"

    def new_ciphertext_file(self, attachment_id: uuid.UUID) -> Path:
        """An empty file, private from the first byte, for `seal_file` to fill."""
        path = self.ciphertext_path(attachment_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, OUTBOX_FILE_MODE)
        os.close(fd)
        return path

    def enqueue(
        self,
        submission: Submission,
        own_copy: bytes,
        attachments: Sequence[SealedAttachment] = (),
    ) -> None:
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
            db.executemany(
                "INSERT INTO attachments (attachment_id, report_id, position, sealed)"
                " VALUES (?, ?, ?, ?)",
                [
                    (str(a.attachment_id), str(submission.report_id), i, msgspec.json.encode(a))
                    for i, a in enumerate(attachments)
                ],
            )

    def _attachments(self) -> dict[str, list[QueuedAttachment]]:
        by_report: dict[str, list[QueuedAttachment]] = {}
        for report_id, sealed, uploaded in self._db.execute(
            "SELECT report_id, sealed, uploaded FROM attachments ORDER BY report_id, position"
        ):
            stored = msgspec.json.decode(sealed, type=SealedAttachment)
            here = str(self.ciphertext_path(stored.attachment_id))
            by_report.setdefault(report_id, []).append(
                QueuedAttachment(
                    msgspec.structs.replace(stored, ciphertext_path=here), bool(uploaded)
                )
            )
        return by_report

    def pending(self) -> list[Queued]:
        rows = self._db.execute(
            "SELECT report_id, sent_at, directory_version, ciphertext, signature, attempts,"
            " last_error FROM outbox ORDER BY queued_at, rowid"
        ).fetchall()
        attachments = self._attachments()
        return [
            Queued(
                report_id=uuid.UUID(r[0]),
                sent_at=r[1],
                directory_version=r[2],
                ciphertext=r[3],
                signature=r[4],
                attempts=r[5],
                last_error=r[6],
                attachments=tuple(attachments.get(r[0], ())),
            )
            for r in rows
        ]

    def mark_uploaded(self, attachment_id: uuid.UUID) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE attachments SET uploaded = 1 WHERE attachment_id = ?", (str(attachment_id),)
            )

    def renew_attachment(
        self, report_id: uuid.UUID, old_id: uuid.UUID, renewed: SealedAttachment, signature: str
    ) -> None:
        """Moves a sealed file to a new attachment id, with the report's new signature.

        Linked under the new name before the commit and unlinked under the old one after it,
        so a crash at any point leaves a row whose file exists (and an orphan to sweep)."""
        old_path = self.ciphertext_path(old_id)
        new_path = self.ciphertext_path(renewed.attachment_id)
        os.link(old_path, new_path)
        try:
            with self._write() as db:
                changed = db.execute(
                    "UPDATE attachments SET attachment_id = ?, sealed = ?, uploaded = 0"
                    " WHERE attachment_id = ? AND report_id = ?",
                    (
                        str(renewed.attachment_id),
                        msgspec.json.encode(renewed),
                        str(old_id),
                        str(report_id),
                    ),
                ).rowcount
                db.execute(
                    "UPDATE outbox SET signature = ? WHERE report_id = ?",
                    (signature, str(report_id)),
                )
                if changed != 1:
                    raise OutboxError(f"attachment {old_id} is not queued with {report_id}")
        except BaseException:
            new_path.unlink(missing_ok=True)
            raise
        old_path.unlink(missing_ok=True)

    def _referenced(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT attachment_id FROM attachments")}

    def sweep_orphans(self, grace_s: float = ORPHAN_GRACE_S) -> list[Path]:
        """Deletes sealed files that no queued report names and nobody touched for `grace_s`."""
        referenced = self._referenced()
        removed = []
        cutoff = time.time() - grace_s
        for path in self.attachments_dir.iterdir():
            if path.name.removesuffix(CIPHERTEXT_SUFFIX) in referenced:
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed.append(path)
        return removed

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
        """Wipes the sealed report, its own copy and its attachments; keeps only the receipt.

        The rows go atomically; the ciphertext files right after the commit (a crash in
        between leaves files no row names, which `sweep_orphans` removes later)."""
        with self._write() as db:
            attached = [
                uuid.UUID(r[0])
                for r in db.execute(
                    "SELECT attachment_id FROM attachments WHERE report_id = ?",
                    (str(receipt.report_id),),
                )
            ]
            db.execute("DELETE FROM outbox WHERE report_id = ?", (str(receipt.report_id),))
            db.execute(
                "INSERT OR REPLACE INTO receipts (report_id, received_at, receipt)"
                " VALUES (?, ?, ?)",
                (str(receipt.report_id), receipt.received_at, receipt.receipt),
            )
        for attachment_id in attached:
            self.ciphertext_path(attachment_id).unlink(missing_ok=True)

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
    files: Sequence[Path] = (),
    cancelled: threading.Event | None = None,
) -> Submission:
    """Seals now, so nothing readable is ever queued; the id chosen here is the one sent.

    Each of `files` is encrypted (streaming) to the directory's investigators and its digests
    are signed into the report; the files themselves are only read. Blocking: run it in a
    thread from async code, with `cancelled` set when the user gives up (Ctrl-C), so a report
    they abandoned is not queued after all once the thread finishes sealing."""
    if len(files) > MAX_ATTACHMENTS:
        raise OutboxError(f"at most {MAX_ATTACHMENTS} attachments per report")
    for file in files:
        if not file.is_file():
            raise OutboxError(f"not a readable file: {file}")
    own_copy = seal(msgspec.json.encode(report), [own_recipient])
    sealed: list[SealedAttachment] = []
    try:
        for file in files:
            _check_cancelled(cancelled)
            attachment_id = uuid.uuid4()
            target = outbox.new_ciphertext_file(attachment_id)
            try:
                sealed.append(
                    seal_file(
                        file, target, directory.investigator_recipients(), device, attachment_id
                    )
                )
            except BaseException:
                target.unlink(missing_ok=True)
                raise
        submission = seal_report(
            device,
            directory,
            report,
            report_id=report_id,
            attachments=[
                AttachmentDigest(a.attachment_id, a.plaintext_sha256, a.ciphertext_sha256)
                for a in sealed
            ],
        )
        _check_cancelled(cancelled)
        outbox.enqueue(submission, own_copy, sealed)
    except BaseException:
        for done in sealed:
            outbox.ciphertext_path(done.attachment_id).unlink(missing_ok=True)
        raise
    return submission


def _check_cancelled(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise OutboxError("cancelled: nothing was queued")


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
    # The same attachments, signed again with the new ciphertext (see the module's trade-off).
    submission = seal_report(
        device,
        directory,
        report,
        report_id=queued.report_id,
        sent_at=queued.sent_at,
        attachments=queued.digests(),
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


def renew_attachment(outbox: Outbox, queued: Queued, index: int, device: DeviceKeyPair) -> Queued:
    """Gives an attachment whose unfinished upload the server dropped (expired after a long
    time offline) a new id, signs it and the report again, and keeps the same sealed bytes.

    Safe for the report's idempotency: an attachment is only renewed while never completed,
    and the server stores no report citing an incomplete attachment, so no copy of this
    report exists under the old signature."""
    old = queued.attachments[index].sealed
    new_id = uuid.uuid4()
    renewed = msgspec.structs.replace(
        old,
        attachment_id=new_id,
        ciphertext_path=str(outbox.ciphertext_path(new_id)),
        signature=b64url(
            device.sign(attachment_message(new_id, old.plaintext_sha256, old.ciphertext_sha256))
        ),
    )
    attachments = list(queued.attachments)
    attachments[index] = QueuedAttachment(renewed, uploaded=False)
    updated = msgspec.structs.replace(queued, attachments=tuple(attachments))
    signature = sign_report(
        device, queued.report_id, queued.sent_at, queued.ciphertext, updated.digests()
    )
    outbox.renew_attachment(queued.report_id, old.attachment_id, renewed, signature)
    return msgspec.structs.replace(updated, signature=signature)


async def _upload_attachments(
    outbox: Outbox, queued: Queued, upload: UploadAttachment | None, device: DeviceKeyPair
) -> Queued | Held:
    """Every attachment the server does not hold yet; the report waits until all are there."""
    for index in range(len(queued.attachments)):
        attachment = queued.attachments[index]
        if attachment.uploaded:
            continue
        if upload is None:
            return _hold(outbox, queued, "attachments queued but no way to upload them")
        try:
            try:
                await upload(attachment.sealed)
            except UploadGone:
                queued = renew_attachment(outbox, queued, index, device)
                attachment = queued.attachments[index]
                await upload(attachment.sealed)
        except ApiError as error:
            if error.problem.status in {401, 403}:
                outbox.note_attempt(queued.report_id, str(error))
                raise
            return _hold(outbox, queued, f"attachment {attachment.sealed.attachment_id}: {error}")
        except (EvidenceError, OSError) as error:
            return _hold(outbox, queued, f"attachment {attachment.sealed.attachment_id}: {error}")
        outbox.mark_uploaded(attachment.sealed.attachment_id)
    return queued


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
    upload: UploadAttachment | None = None,
) -> SyncResult:
    """Sends the queue in order, each report's attachments first; an authentication failure
    propagates, as nothing else would pass, and a network failure stops the sync with the rest
    of the queue untouched (an upload it cut short resumes at the next sync)."""
    acknowledged: list[ReportReceipt] = []
    held: list[Held] = []
    with outbox.sync_lock():
        outbox.sweep_orphans()
        for queued in outbox.pending():
            try:
                uploaded = await _upload_attachments(outbox, queued, upload, device)
                if isinstance(uploaded, Held):
                    held.append(uploaded)
                    continue
                outcome = await _deliver(outbox, uploaded, send, device, identity, fetch_directory)
            except httpx.HTTPError as error:
                outbox.note_attempt(queued.report_id, f"network: {type(error).__name__}")
                return SyncResult(acknowledged, held, interrupted=type(error).__name__)
            if isinstance(outcome, Held):
                held.append(outcome)
            else:
                acknowledged.append(outcome)
    return SyncResult(acknowledged, held)
