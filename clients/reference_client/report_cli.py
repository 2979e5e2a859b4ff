"""The report workflow on the command line: operatives file, sync, read and reply; investigators
work the queue, open, triage and reply.

Every command runs on the encrypted profile and its session. The async functions are the
library (tests drive them in-process); `run` is the thin synchronous shell `cli.py` calls.

Report and message text may come from `--text`, but is read from standard input when that is
left out, because an argument lands in shell history and the process list.

Evidence: `report new --attach FILE...` seals each file into the outbox with the report (see
outbox.py); `sync` uploads them with a progress line on standard error, resuming from the
server's offset, then sends the report; `show REPORT --save-attachments DIR` (investigator)
downloads, decrypts and checks each cited attachment against the digests the device signed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import httpx
import msgspec

from clients.reference_client import keys
from clients.reference_client.api import ApiError, TiplineClient, raise_for_problem
from clients.reference_client.device import b64url
from clients.reference_client.envelope import AttachmentDigest, EnvelopeError, receipt_hash
from clients.reference_client.evidence import (
    DEFAULT_CHUNK_BYTES,
    RETRIES,
    EvidenceClient,
    EvidenceError,
    Progress,
    SealedAttachment,
)
from clients.reference_client.outbox import (
    Outbox,
    OutboxError,
    SyncResult,
    outbox_path,
    queue_report,
    sync,
)
from clients.reference_client.profile import Profile, save_profile
from clients.reference_client.reports import (
    ReportReceipt,
    Submission,
    TipReport,
    open_message,
    open_report,
    seal_message,
    submit,
)

COMMANDS: Final = frozenset({"report", "sync", "inbox", "reply", "queue", "show", "triage"})
STATUSES: Final = ("new", "in_review", "verified", "rejected", "duplicate", "needs_info")
PRIORITIES: Final = range(4)
# A reply is idempotent by its message id, so resending the same body after a lost answer is
# safe; a few tries cover a flaky link without hiding an outage.
REPLY_SEND_TRIES: Final = 3
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# RFC 7638 §3.2: the members a thumbprint covers, per key type.
_JWK_REQUIRED: Final = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
SAVED_FILE_MODE: Final = 0o600
SAVED_DIR_MODE: Final = 0o700


class ProfileState:
    """The profile as one command changes it (pinned root key, directory seen); the caller
    saves it afterwards, whatever happened."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    @property
    def token(self) -> str:
        if self.profile.session_token is None:
            raise LookupError("not logged in")
        return self.profile.session_token

    def client(self) -> TiplineClient:
        return TiplineClient(self.profile.server_url, self.profile.device_key())

    def pin_root_key(self, root_public_key: str | None) -> None:
        """Accept the root public key once; only the key whose fingerprint was pinned at
        enrolment (from the invite) is taken, and a pinned key is never replaced."""
        if root_public_key is None:
            return
        pinned = self.profile.root_public_key
        if pinned is not None:
            if pinned != root_public_key:
                raise keys.DirectoryError("a different root public key is already pinned")
            return
        fingerprint = self.profile.org_root_fingerprint
        if fingerprint is not None:
            keys.check_root_key(root_public_key, fingerprint)
        else:
            # No fingerprint came with the invite: the key given here, out of band, is the
            # anchor from now on.
            fingerprint = keys.root_fingerprint(root_public_key)
        self.profile = msgspec.structs.replace(
            self.profile, root_public_key=root_public_key, org_root_fingerprint=fingerprint
        )

    def _root_key(self) -> str:
        if self.profile.root_public_key is None:
            raise keys.DirectoryError(
                "no organisation root key pinned yet: pass --root-public-key once"
            )
        return self.profile.root_public_key

    def _accept(self, signed: keys.SignedDirectory) -> keys.Directory:
        directory = keys.verify_directory(
            signed, self._root_key(), self.profile.directory_version_seen
        )
        self.profile = msgspec.structs.replace(
            self.profile,
            directory_version_seen=directory.version,
            key_directory=msgspec.json.encode(signed).decode("ascii"),
        )
        return directory

    async def fresh_directory(self, client: TiplineClient) -> keys.Directory:
        return self._accept(await keys.fetch_directory(client, self.token))

    def cached_directory(self) -> keys.Directory | None:
        if self.profile.key_directory is None:
            return None
        signed = msgspec.json.decode(self.profile.key_directory, type=keys.SignedDirectory)
        return self._accept(signed)

    async def directory_for_sealing(self, client: TiplineClient) -> keys.Directory:
        """The newest directory the server has, or, offline, the last one verified here: the
        report is sealed now either way, and a stale one is re-encrypted at sync. Sealing
        needs no session, so an expired one does not stop a report being written either; a
        directory that fails verification is never worked around."""
        try:
            return await self.fresh_directory(client)
        except (httpx.TransportError, ApiError, LookupError):
            cached = self.cached_directory()
            if cached is None:
                raise
            return cached


def _thumbprint(jwk: Mapping[str, str]) -> str:
    members = _JWK_REQUIRED.get(jwk.get("kty", ""))
    if members is None or any(m not in jwk for m in members):
        raise EnvelopeError("unsupported device key")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def check_team_key(directory: keys.Directory, device_key: Mapping[str, str]) -> None:
    """An investigator's message must be signed by a device the root-signed directory names;
    otherwise the server could write to an operative in the team's name."""
    team = {
        _thumbprint(k) for e in directory.entries if e.role == "investigator" for k in e.device_keys
    }
    if _thumbprint(device_key) not in team:
        raise EnvelopeError("the message is not signed by a device in the key directory")


# --- operative ----------------------------------------------------------------------------------


async def new_report(
    state: ProfileState, outbox: Outbox, report: TipReport, attach: Sequence[Path] = ()
) -> uuid.UUID:
    async with state.client() as client:
        directory = await state.directory_for_sealing(client)
    # The reply key travels inside the signed ciphertext: the server can neither read nor swap it.
    report = msgspec.structs.replace(report, reply_to=state.profile.age_recipient())
    # Encrypting a video takes a while; the event loop (and a test's live server) keeps going.
    cancelled = threading.Event()
    try:
        submission = await asyncio.to_thread(
            queue_report,
            outbox,
            state.profile.device_key(),
            state.profile.age_recipient(),
            directory,
            report,
            files=attach,
            cancelled=cancelled,
        )
    except asyncio.CancelledError:
        # Ctrl-C: the worker thread cannot be stopped, but it must not queue the report.
        cancelled.set()
        raise
    return submission.report_id


StartUpload = Callable[[SealedAttachment], Progress | None]


async def sync_outbox(
    state: ProfileState,
    outbox: Outbox,
    *,
    on_upload: StartUpload | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    retries: int = RETRIES,
) -> SyncResult:
    """`on_upload` is told of each attachment as its upload starts and may return a progress
    callback for it."""
    async with state.client() as client, EvidenceClient(client) as evidence:
        token = state.token

        async def send(submission: Submission) -> ReportReceipt:
            return await submit(client, token, submission)

        async def fetch() -> keys.Directory:
            return await state.fresh_directory(client)

        async def upload(sealed: SealedAttachment) -> None:
            progress = on_upload(sealed) if on_upload is not None else None
            await evidence.upload(
                token, sealed, chunk_bytes=chunk_bytes, progress=progress, retries=retries
            )

        return await sync(
            outbox,
            send,
            device=state.profile.device_key(),
            identity=state.profile.age_identity,
            fetch_directory=fetch,
            upload=upload,
        )


async def inbox(state: ProfileState) -> list[dict[str, Any]]:
    async with state.client() as client:
        response = await client.call("GET", "/v1/inbox", state.token)
    raise_for_problem(response)
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def read_message(state: ProfileState, message_id: uuid.UUID) -> str:
    """Verifies, decrypts and marks read one inbox message."""
    async with state.client() as client:
        listed = await client.call("GET", "/v1/inbox", state.token)
        raise_for_problem(listed)
        item = next((m for m in listed.json()["messages"] if m["id"] == str(message_id)), None)
        if item is None:
            raise LookupError(f"no message {message_id} in the inbox")
        thread = await client.call("GET", f"/v1/reports/{item['report_id']}/messages", state.token)
        raise_for_problem(thread)
        message = next((m for m in thread.json()["messages"] if m["id"] == str(message_id)), None)
        if message is None:
            raise LookupError(f"message {message_id} is not in its thread")
        if message["author_role"] == "investigator":
            check_team_key(await state.fresh_directory(client), message["device_key"])
        text = open_message(message, state.profile.age_identity)
        raise_for_problem(await client.call("POST", f"/v1/messages/{message_id}/read", state.token))
    return text


async def reply(state: ProfileState, report_id: uuid.UUID, text: str) -> uuid.UUID:
    """An operative writes to the investigators; an investigator to the operative and the team.

    The operative's age recipient is not served by any endpoint: it is the `reply_to` inside
    the report, which the operative's device signed and only investigators can decrypt.
    """
    async with state.client() as client:
        directory = await state.fresh_directory(client)
        recipients = directory.investigator_recipients()
        if state.profile.role == "investigator":
            detail = await client.call("GET", f"/v1/reports/{report_id}", state.token)
            raise_for_problem(detail)
            report = open_report(detail.json(), state.profile.age_identity)
            if report.reply_to is None:
                raise EnvelopeError("the report names no key to reply to")
            recipients = [*recipients, report.reply_to]
        body = seal_message(
            state.profile.device_key(), recipients, directory.version, report_id, text
        )
        path = f"/v1/reports/{report_id}/messages"
        for attempt in range(REPLY_SEND_TRIES):
            try:
                response = await client.call("POST", path, state.token, json=body)
                break
            except httpx.TransportError:
                if attempt == REPLY_SEND_TRIES - 1:
                    raise
    raise_for_problem(response)
    return uuid.UUID(body["message_id"])


# --- investigator -------------------------------------------------------------------------------


class Shown(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    status: str
    priority: int
    sent_at: str
    received_at: str
    report: TipReport
    # Covered by the device signature that `show` verified.
    attachments: tuple[AttachmentDigest, ...] = ()


async def queue(
    state: ProfileState, status: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    params = {"limit": str(limit)}
    if status is not None:
        params["status"] = status
    if cursor is not None:
        params["cursor"] = cursor
    async with state.client() as client:
        response = await client.call(
            "GET", "/v1/reports?" + str(httpx.QueryParams(params)), state.token
        )
    raise_for_problem(response)
    page: dict[str, Any] = response.json()
    return page


async def show(state: ProfileState, report_id: uuid.UUID) -> Shown:
    async with state.client() as client:
        response = await client.call("GET", f"/v1/reports/{report_id}", state.token)
    raise_for_problem(response)
    detail = response.json()
    if detail.get("ciphertext") is None:
        raise LookupError("only investigators can open a report")
    # open_report checks the digest and the device signature before it decrypts anything.
    report = open_report(detail, state.profile.age_identity)
    expected = receipt_hash(
        report_id, detail["received_at"], detail["ciphertext_sha256"], detail["signature"]
    )
    if expected != detail["receipt"]:
        raise EnvelopeError("the stored receipt does not match the report")
    return Shown(
        report_id=report_id,
        status=detail["status"],
        priority=detail["priority"],
        sent_at=detail["sent_at"],
        received_at=detail["received_at"],
        report=report,
        # The very list open_report checked the signature over, in the server's order.
        attachments=tuple(
            AttachmentDigest(
                uuid.UUID(a["attachment_id"]), a["plaintext_sha256"], a["ciphertext_sha256"]
            )
            for a in detail.get("attachments", [])
        ),
    )


async def save_attachments(state: ProfileState, shown: Shown, folder: Path) -> list[Path]:
    """Downloads, decrypts and checks each attachment of a verified report into `folder`.

    Each file must match both digests of the signed report (so it is the device's file, bit
    for bit); a file that does not is removed and the error raised. Files are private and
    never overwrite anything."""
    await asyncio.to_thread(folder.mkdir, mode=SAVED_DIR_MODE, parents=True, exist_ok=True)
    saved: list[Path] = []
    async with state.client() as client, EvidenceClient(client) as evidence:
        for digest in shown.attachments:
            target = folder / str(digest.attachment_id)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SAVED_FILE_MODE)
            os.close(fd)
            try:
                await evidence.fetch_verified(
                    state.token, digest, state.profile.age_identity, target
                )
            except BaseException:
                target.unlink(missing_ok=True)
                raise
            saved.append(target)
    return saved


async def triage(
    state: ProfileState, report_id: uuid.UUID, status: str | None, priority: int | None
) -> dict[str, Any]:
    change: dict[str, Any] = {}
    if status is not None:
        change["status"] = status
    if priority is not None:
        change["priority"] = priority
    async with state.client() as client:
        response = await client.call("PATCH", f"/v1/reports/{report_id}", state.token, json=change)
    raise_for_problem(response)
    result: dict[str, Any] = response.json()
    return result


# --- command line -------------------------------------------------------------------------------


def _observed_at(value: str) -> str:
    if not _RFC3339_UTC.fullmatch(value):
        raise argparse.ArgumentTypeError("use RFC 3339 UTC, e.g. 2026-11-30T07:00:00Z")
    return value


def _root_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root-public-key",
        help="the organisation root public key (base64); needed once, checked against the"
        " fingerprint pinned at enrolment",
    )


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = subparsers.add_parser("report", help="operative: write a report into the outbox")
    report_commands = report.add_subparsers(dest="report_command", required=True)
    new = report_commands.add_parser("new", help="seal and sign a report now; sync sends it")
    new.add_argument("--text", help="the report; read from standard input when left out")
    new.add_argument("--location")
    new.add_argument("--observed-at", type=_observed_at, help="RFC 3339 UTC")
    new.add_argument(
        "--attach",
        type=Path,
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="evidence files: encrypted into the outbox now (the files are left as they are),"
        " uploaded by sync",
    )
    _root_key_option(new)

    sync_parser = subparsers.add_parser("sync", help="operative: send the outbox until received")
    _root_key_option(sync_parser)

    inbox_parser = subparsers.add_parser("inbox", help="messages to me, unread first")
    inbox_parser.add_argument("--read", type=uuid.UUID, metavar="ID", help="open one, mark read")
    _root_key_option(inbox_parser)

    reply_parser = subparsers.add_parser("reply", help="write into a report's thread")
    reply_parser.add_argument("report_id", type=uuid.UUID)
    reply_parser.add_argument("--text", help="the message; read from standard input if left out")
    _root_key_option(reply_parser)

    queue_parser = subparsers.add_parser("queue", help="investigator: the report queue")
    queue_parser.add_argument("--status", choices=STATUSES)
    queue_parser.add_argument("--limit", type=int, default=50)
    queue_parser.add_argument("--cursor", help="next_cursor of the previous page")

    show_parser = subparsers.add_parser("show", help="investigator: verify, decrypt, print")
    show_parser.add_argument("report_id", type=uuid.UUID)
    show_parser.add_argument(
        "--save-attachments",
        type=Path,
        metavar="DIR",
        help="download, decrypt and verify the report's attachments into DIR",
    )

    triage_parser = subparsers.add_parser("triage", help="investigator: status and priority")
    triage_parser.add_argument("report_id", type=uuid.UUID)
    triage_parser.add_argument("--status", choices=STATUSES)
    triage_parser.add_argument("--priority", type=int, choices=PRIORITIES)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _text(given: str | None, label: str) -> str:
    text = given
    if text is None:
        if sys.stdin.isatty():
            sys.stderr.write(f"{label}, then Ctrl-D:\n")
        text = sys.stdin.read().strip("\n")
    if not text.strip():
        raise SystemExit(f"tipline-client: the {label} is empty")
    return text


def run(args: argparse.Namespace, profile: Profile, passphrase: str) -> None:
    state = ProfileState(profile)
    try:
        state.pin_root_key(getattr(args, "root_public_key", None))
        asyncio.run(_dispatch(args, state))
    except (keys.DirectoryError, EnvelopeError, OutboxError, EvidenceError) as exc:
        raise SystemExit(f"tipline-client: {exc}") from None
    finally:
        # The directory version seen must survive a failed command, or a replay could pass.
        if state.profile != profile:
            save_profile(args.profile, state.profile, passphrase)


def _outbox(profile_path: Path) -> Outbox:
    return Outbox(outbox_path(profile_path))


async def _dispatch(args: argparse.Namespace, state: ProfileState) -> None:
    command = args.command
    if command == "report":
        report = TipReport(
            text=_text(args.text, "report text"),
            location=args.location,
            observed_at=args.observed_at,
        )
        with _outbox(args.profile) as outbox:
            report_id = await new_report(state, outbox, report, args.attach)
        attached = f" with {len(args.attach)} attachment(s)" if args.attach else ""
        _say(f"queued {report_id}{attached}")
    elif command == "sync":
        with _outbox(args.profile) as outbox:
            result = await sync_outbox(state, outbox, on_upload=_show_progress)
            left = len(outbox.pending())
        _print_sync(result, left)
    elif command == "inbox":
        if args.read is not None:
            _say(await read_message(state, args.read))
            return
        for m in await inbox(state):
            mark = "read" if m["read"] else "unread"
            _say(
                f"{m['id']} {mark:<6} report {m['report_id']} {m['author_role']} {m['received_at']}"
            )
    elif command == "reply":
        message_id = await reply(state, args.report_id, _text(args.text, "message"))
        _say(f"sent {message_id}")
    elif command == "queue":
        page = await queue(state, args.status, args.limit, args.cursor)
        for r in page["reports"]:
            if "priority" in r:
                _say(f"{r['id']} {r['status']:<10} p{r['priority']} received {r['received_at']}")
            else:
                _say(f"{r['id']} {r['status']:<10} received {r['received_on']}")
        if page.get("next_cursor"):
            _say(f"next: --cursor {page['next_cursor']}")
    elif command == "show":
        shown = await show(state, args.report_id)
        _say(f"report {shown.report_id} ({shown.status}, priority {shown.priority})")
        _say("device signature verified")
        _say(f"sent {shown.sent_at}, received {shown.received_at}")
        _say(f"observed at: {shown.report.observed_at or '-'}")
        _say(f"location: {shown.report.location or '-'}")
        for a in shown.attachments:
            _say(f"attachment {a.attachment_id} {a.plaintext_sha256} {a.ciphertext_sha256}")
        if args.save_attachments is not None:
            for path in await save_attachments(state, shown, args.save_attachments):
                _say(f"saved {path} (both digests match)")
        _say("text:")
        _say(shown.report.text)
    elif command == "triage":
        if args.status is None and args.priority is None:
            raise SystemExit("tipline-client: give --status, --priority or both")
        changed = await triage(state, args.report_id, args.status, args.priority)
        _say(f"{changed['id']} {changed['status']} priority {changed['priority']}")


def _show_progress(sealed: SealedAttachment) -> Progress:
    sys.stderr.write(f"uploading attachment {sealed.attachment_id}\n")

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        percent = 100 * done // max(total, 1)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {percent:3d}% {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return progress


def _print_sync(result: SyncResult, left: int) -> None:
    for receipt in result.acknowledged:
        _say(f"received {receipt.report_id} at {receipt.received_at} receipt {receipt.receipt}")
    for held in result.held:
        sys.stderr.write(f"tipline-client: {held.report_id} kept: {held.reason}\n")
    if result.interrupted is not None:
        raise SystemExit(
            f"tipline-client: network failed ({result.interrupted}); {left} report(s) still queued"
        )
    if result.held:
        raise SystemExit(f"tipline-client: {left} report(s) still queued")
    if not result.acknowledged:
        _say("outbox empty")
