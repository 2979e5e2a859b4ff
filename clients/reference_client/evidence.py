"""Evidence on the device: encrypt a file with age (streaming), sign both digests with the
device key, upload it with tus 1.0.0 resuming from the server's offset; and, on the
investigator's side, download, decrypt and verify it and print its chain of custody.

Written from docs/protocol.md §3.6, never from the server's code. Nothing here holds a whole
file in memory: age (pyrage's `encrypt_io`/`decrypt_io`) works on file objects in 64 KiB
chunks, and uploads and downloads move bounded blocks.

Outbox integration (`report new --attach FILE`, clients/reference_client/outbox.py): `seal_file`
writes the ciphertext next to the outbox and returns a `SealedAttachment`, persisted with the
queued report; `sync` calls `EvidenceClient.upload` for each sealed attachment before submitting
the report, whose signed message lists `attachment_id plaintext_sha256 ciphertext_sha256`
(envelope.report_message with `AttachmentDigest`s). Because creation is idempotent by attachment
id, an upload resumes after a client restart by simply calling `upload` again. An investigator
checks a cited attachment with `fetch_verified` against the digests of a report whose signature
was verified (reports.open_report).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import httpx
import msgspec
import pyrage

from clients.reference_client.api import (
    ApiError,
    Problem,
    Session,
    TiplineClient,
    raise_for_problem,
)
from clients.reference_client.device import DeviceKeyPair, b64url
from clients.reference_client.envelope import AttachmentDigest, EnvelopeError, verify_signature

TUS_VERSION: Final = "1.0.0"
OFFSET_MEDIA_TYPE: Final = "application/offset+octet-stream"
BLOCK: Final = 1 << 20
# A phone on a mobile network sends modest chunks: a dropped connection then costs little, and
# the server keeps whatever arrived of the interrupted chunk anyway.
DEFAULT_CHUNK_BYTES: Final = 16 * 2**20
UPLOAD_TIMEOUT_S: Final = 120.0
RETRIES: Final = 8
# Domain separation: an attachment signature can never be taken for a report's or a message's.
ATTACHMENT_CONTEXT: Final = b"tipline-attachment-v1\n"

Progress = Callable[[int, int], None]


class EvidenceError(Exception):
    pass


class UploadGone(EvidenceError):
    """The server no longer holds this unfinished upload of ours (expired and swept, or
    deleted): the id cannot be used again, the sealed file can, under a new id."""


class SealedAttachment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the device keeps about one encrypted file (and hands to a prosecutor later)."""

    attachment_id: UUID
    ciphertext_path: str
    ciphertext_length: int
    plaintext_sha256: str
    ciphertext_sha256: str
    # The device's signature over `attachment_message(...)`, base64url, and its public key.
    signature: str
    device_key: dict[str, str]


class CustodyEvent(msgspec.Struct, frozen=True):
    event: str
    occurred_at: datetime
    actor_id: UUID | None
    actor_role: str | None
    audit_event_id: int
    range_start: int | None = None
    range_end: int | None = None


class CustodyLog(msgspec.Struct, frozen=True):
    attachment_id: UUID
    status: str
    events: list[CustodyEvent]


class Verification(msgspec.Struct, frozen=True):
    attachment_id: UUID
    plaintext_sha256: str
    ciphertext_sha256: str
    plaintext_path: str
    custody: CustodyLog


def attachment_message(attachment_id: UUID, plaintext_sha256: str, ciphertext_sha256: str) -> bytes:
    return (
        ATTACHMENT_CONTEXT
        + f"{attachment_id}\n{plaintext_sha256}\n{ciphertext_sha256}\n".encode("ascii")
    )


class _HashingReader(io.RawIOBase):
    def __init__(self, inner: io.BufferedIOBase | io.RawIOBase | Any) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


class _HashingWriter(io.RawIOBase):
    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.length = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self._inner.write(view)
        self.sha256.update(view)
        self.length += len(view)
        return len(view)


def seal_file(
    plaintext: Path,
    ciphertext: Path,
    recipients: Sequence[str],
    device: DeviceKeyPair,
    attachment_id: UUID,
) -> SealedAttachment:
    """Encrypts `plaintext` to `recipients` (streaming) and signs both digests."""
    if not recipients:
        raise EvidenceError("no recipients: publish a key directory first")
    parsed = [pyrage.x25519.Recipient.from_str(r) for r in recipients]
    with plaintext.open("rb") as source, ciphertext.open("wb") as target:
        reader = _HashingReader(source)
        writer = _HashingWriter(target)
        pyrage.encrypt_io(reader, writer, parsed)
        target.flush()
        os.fsync(target.fileno())
    plain_sha256 = reader.sha256.hexdigest()
    cipher_sha256 = writer.sha256.hexdigest()
    signature = b64url(device.sign(attachment_message(attachment_id, plain_sha256, cipher_sha256)))
    return SealedAttachment(
        attachment_id=attachment_id,
        ciphertext_path=str(ciphertext),
        ciphertext_length=writer.length,
        plaintext_sha256=plain_sha256,
        ciphertext_sha256=cipher_sha256,
        signature=signature,
        device_key=device.public_jwk(),
    )


def _metadata(sealed: SealedAttachment) -> str:
    def b64(value: str) -> str:
        return base64.b64encode(value.encode("ascii")).decode("ascii")

    return (
        f"attachment_id {b64(str(sealed.attachment_id))},"
        f"ciphertext_length {b64(str(sealed.ciphertext_length))},"
        f"ciphertext_sha256 {b64(sealed.ciphertext_sha256)}"
    )


async def _file_range(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        source.seek(start)
        position = start
        while position < end:
            block = await asyncio.to_thread(source.read, min(BLOCK, end - position))
            if not block:
                raise EvidenceError("the ciphertext file is shorter than sealed")
            position += len(block)
            yield block


class EvidenceClient:
    """tus uploads, downloads and custody for one device, on top of a `TiplineClient`."""

    def __init__(self, client: TiplineClient, *, timeout_s: float = UPLOAD_TIMEOUT_S) -> None:
        self.client = client
        self._http = httpx.AsyncClient(base_url=client.server_url, timeout=timeout_s)

    async def __aenter__(self) -> EvidenceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def _headers(self, method: str, path: str, token: str, *, tus: bool = True) -> dict[str, str]:
        headers = {
            "Authorization": f"DPoP {token}",
            "DPoP": self.client.proof(method, path, access_token=token),
        }
        if tus:
            headers["Tus-Resumable"] = TUS_VERSION
        return headers

    async def _create(self, token: str, sealed: SealedAttachment) -> int | None:
        """The server's offset for this upload (creating it if new); None once complete."""
        path = "/v1/uploads"
        headers = {
            **self._headers("POST", path, token),
            "Upload-Length": str(sealed.ciphertext_length),
            "Upload-Metadata": _metadata(sealed),
        }
        response = await self._http.post(path, headers=headers)
        if response.status_code == 201:
            return int(response.headers["Upload-Offset"])
        if response.status_code == 409:
            # Already complete (or the id taken): only a complete upload of ours is fine.
            head = await self.offset(token, sealed.attachment_id)
            if head is not None and head[0] == head[1] == sealed.ciphertext_length:
                return None
            if head is None:
                raise UploadGone(f"the server no longer holds upload {sealed.attachment_id}")
        raise_for_problem(response)
        raise EvidenceError(f"unexpected answer {response.status_code} to tus creation")

    async def offset(self, token: str, attachment_id: UUID) -> tuple[int, int] | None:
        path = f"/v1/uploads/{attachment_id}"
        response = await self._http.head(path, headers=self._headers("HEAD", path, token))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ApiError(
                Problem(type="about:blank", title="HEAD failed", status=response.status_code)
            )
        return int(response.headers["Upload-Offset"]), int(response.headers["Upload-Length"])

    async def upload(
        self,
        session: Session | str,
        sealed: SealedAttachment,
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        progress: Progress | None = None,
        retries: int = RETRIES,
    ) -> None:
        """Uploads (or resumes) a sealed attachment until the server holds all of it.

        Each round asks the server where it stands, so after a dropped connection or a client
        restart nothing it already has is sent again.
        """
        token = session if isinstance(session, str) else session.access_token
        source = Path(sealed.ciphertext_path)
        length = sealed.ciphertext_length
        failures = 0
        offset = await self._create(token, sealed)
        path = f"/v1/uploads/{sealed.attachment_id}"
        while offset is not None and offset < length:
            end = min(length, offset + chunk_bytes)
            headers = {
                **self._headers("PATCH", path, token),
                "Upload-Offset": str(offset),
                "Content-Type": OFFSET_MEDIA_TYPE,
                "Content-Length": str(end - offset),
            }
            try:
                response = await self._http.patch(
                    path, headers=headers, content=_file_range(source, offset, end)
                )
            except httpx.TransportError:
                failures += 1
                if failures > retries:
                    raise
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                offset = await self._create(token, sealed)
                continue
            if response.status_code == 204:
                offset = int(response.headers["Upload-Offset"])
                failures = 0
                if progress is not None:
                    progress(offset, length)
                continue
            if response.status_code == 409 and failures < retries:
                # Another request of ours is still being finished, or we are behind.
                failures += 1
                await asyncio.sleep(0.2 * failures)
                offset = await self._create(token, sealed)
                continue
            raise_for_problem(response)
        if progress is not None:
            progress(length, length)

    async def custody(self, session: Session | str, attachment_id: UUID) -> CustodyLog:
        token = session if isinstance(session, str) else session.access_token
        path = f"/v1/attachments/{attachment_id}/custody"
        response = await self._http.get(path, headers=self._headers("GET", path, token, tus=False))
        raise_for_problem(response)
        return msgspec.json.decode(response.content, type=CustodyLog)

    async def download(self, session: Session | str, attachment_id: UUID, target: Path) -> str:
        """Streams the ciphertext to `target`; returns its SHA-256."""
        token = session if isinstance(session, str) else session.access_token
        path = f"/v1/attachments/{attachment_id}"
        hasher = hashlib.sha256()
        headers = self._headers("GET", path, token, tus=False)
        async with self._http.stream("GET", path, headers=headers) as response:
            if not response.is_success:
                await response.aread()
                raise_for_problem(response)
            with target.open("wb") as sink:
                async for block in response.aiter_bytes(BLOCK):
                    hasher.update(block)
                    await asyncio.to_thread(sink.write, block)
        return hasher.hexdigest()

    async def verify(
        self,
        session: Session | str,
        sealed: SealedAttachment,
        identity: str,
        plaintext_out: Path,
    ) -> Verification:
        """Downloads, decrypts and checks an attachment against what the device signed.

        Order matters: the device signature is checked over the digests first, then the
        downloaded bytes against the signed ciphertext digest, then the decrypted bytes against
        the signed plaintext digest; any mismatch raises and leaves no plaintext behind.
        """
        message = attachment_message(
            sealed.attachment_id, sealed.plaintext_sha256, sealed.ciphertext_sha256
        )
        try:
            verify_signature(sealed.device_key, message, sealed.signature)
        except EnvelopeError as exc:
            raise EvidenceError(f"device signature: {exc}") from None
        digest = AttachmentDigest(
            sealed.attachment_id, sealed.plaintext_sha256, sealed.ciphertext_sha256
        )
        await self.fetch_verified(session, digest, identity, plaintext_out)
        custody = await self.custody(session, sealed.attachment_id)
        return Verification(
            attachment_id=sealed.attachment_id,
            plaintext_sha256=sealed.plaintext_sha256,
            ciphertext_sha256=sealed.ciphertext_sha256,
            plaintext_path=str(plaintext_out),
            custody=custody,
        )

    async def fetch_verified(
        self,
        session: Session | str,
        digest: AttachmentDigest,
        identity: str,
        plaintext_out: Path,
    ) -> None:
        """Downloads and decrypts an attachment whose digests the caller has already seen
        signed; raises, leaving no plaintext behind, unless both digests match."""
        ciphertext = plaintext_out.with_name(plaintext_out.name + ".age")
        decrypting = False
        try:
            cipher_sha256 = await self.download(session, digest.attachment_id, ciphertext)
            if cipher_sha256 != digest.ciphertext_sha256:
                raise EvidenceError("the downloaded ciphertext does not match the signed digest")
            decrypting = True
            plain_sha256 = await asyncio.to_thread(_decrypt, ciphertext, plaintext_out, identity)
        except BaseException:
            # age authenticates chunk by chunk: a failure midway leaves a verified prefix,
            # which is still not evidence anyone should be handed.
            if decrypting:
                await asyncio.to_thread(plaintext_out.unlink, missing_ok=True)
            raise
        finally:
            await asyncio.to_thread(ciphertext.unlink, missing_ok=True)
        if plain_sha256 != digest.plaintext_sha256:
            await asyncio.to_thread(plaintext_out.unlink, missing_ok=True)
            raise EvidenceError("the decrypted file does not match the signed plaintext digest")


def _decrypt(ciphertext: Path, plaintext: Path, identity: str) -> str:
    key = pyrage.x25519.Identity.from_str(identity)
    with ciphertext.open("rb") as source, plaintext.open("wb") as target:
        writer = _HashingWriter(target)
        try:
            pyrage.decrypt_io(source, writer, [key])
        except pyrage.DecryptError as exc:
            raise EvidenceError(f"cannot decrypt: {exc}") from None
    return writer.sha256.hexdigest()


def custody_lines(log: CustodyLog, names: Mapping[str, str] | None = None) -> list[str]:
    """The custody history as lines for a report to hand over (UTC, oldest first)."""
    lines = [f"attachment {log.attachment_id} ({log.status})"]
    for event in log.events:
        actor = str(event.actor_id) if event.actor_id else "-"
        if names and actor in names:
            actor = f"{names[actor]} ({actor})"
        span = ""
        if event.range_start is not None and event.range_end is not None:
            span = f" bytes {event.range_start}-{event.range_end}"
        when = event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(
            f"{when}  {event.event:<10} by {actor} [{event.actor_role or '-'}]{span}"
            f"  audit#{event.audit_event_id}"
        )
    return lines
