"""Evidence over HTTP: the tus 1.0.0 upload endpoint, downloads with Range, the custody log.

tus status codes (412, 409, 460, 404, 413, 415) still carry problem+json bodies; every tus
response carries `Tus-Resumable`. Request bodies are streamed to storage chunk by chunk
(`request.stream()`), never read whole.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from datetime import datetime
from email.utils import format_datetime
from typing import Any, Final
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, head, patch, route
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.enums import HttpMethod, ScopeType
from litestar.exceptions import InternalServerException
from litestar.params import FromPath
from litestar.response import Stream
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from server.db import Pool
from server.errors import (
    BadRequest,
    InvalidInput,
    PreconditionFailed,
    UnsupportedMediaType,
)
from server.evidence import service
from server.evidence.service import Checksum, CustodyLog, EvidenceContext, NewUpload, Upload
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.settings import Settings

TUS_VERSION: Final = "1.0.0"
TUS_EXTENSIONS: Final = "creation,creation-with-upload,checksum,expiration,termination"
UPLOADS_PATH: Final = "/v1/uploads"
# tus checksum extension: algorithm -> digest size. sha1 is the one every server must support.
CHECKSUM_ALGORITHMS: Final = {"sha1": 20, "sha256": 32}
OFFSET_MEDIA_TYPE: Final = "application/offset+octet-stream"
# The upload routes' own body ceiling (the app-wide limit is 64 KiB); the real per-PATCH limit
# is the setting `evidence_max_patch_bytes`, enforced while streaming, and never more than the
# bytes the upload still lacks.
PATCH_BODY_CEILING: Final = 2**32
# Only what the server needs: no filename, no MIME type, nothing about the plaintext.
METADATA_KEYS: Final = frozenset({"attachment_id", "ciphertext_length", "ciphertext_sha256"})
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# RFC 9110 §14.1: the range unit is case-insensitive. Bounded digits: int() of thousands of
# digits is slow, and past 4300 raises (a 500); 19 digits already exceed any object.
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$", re.IGNORECASE)
_DIGITS = re.compile(r"^\d{1,19}$")


def tus_resumable(app: ASGIApp) -> ASGIApp:
    """tus 1.0.0: every response under /v1/uploads carries Tus-Resumable, including those the
    framework answers itself (401/403 from the guard, 404/405 from routing, 413, 500)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == ScopeType.HTTP else ""
        if path != UPLOADS_PATH and not path.startswith(UPLOADS_PATH + "/"):
            await app(scope, receive, send)
            return

        async def send_tus(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"tus-resumable"
                ]
                headers.append((b"tus-resumable", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await app(scope, receive, send_tus)

    return middleware


def _require_tus(request: Request[Any, Any, Any]) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise PreconditionFailed("Send Tus-Resumable: 1.0.0", headers={"Tus-Version": TUS_VERSION})


def _http_date(moment: datetime | None) -> dict[str, str]:
    return {"Upload-Expires": format_datetime(moment, usegmt=True)} if moment else {}


def _integer(value: str | None, name: str) -> int:
    if value is None or not _DIGITS.match(value.strip()):
        raise BadRequest(f"{name} must be a non-negative integer")
    return int(value.strip())


def _metadata(raw: str | None) -> dict[str, str]:
    if not raw:
        raise InvalidInput("Upload-Metadata must carry attachment_id and ciphertext_sha256")
    values: dict[str, str] = {}
    for pair in raw.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if key not in METADATA_KEYS or key in values:
            raise InvalidInput(
                "Upload-Metadata may carry only attachment_id, ciphertext_length and "
                "ciphertext_sha256, once each"
            )
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("Upload-Metadata values must be base64") from None
    return values


def _new_upload(request: Request[Any, Any, Any]) -> NewUpload:
    if "upload-defer-length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported: declare Upload-Length")
    length = _integer(request.headers.get("upload-length"), "Upload-Length")
    if length == 0:
        raise InvalidInput("An attachment has at least one byte")
    meta = _metadata(request.headers.get("upload-metadata"))
    try:
        attachment_id = UUID(meta.get("attachment_id", ""))
    except ValueError:
        raise InvalidInput("attachment_id must be a UUID") from None
    if str(attachment_id) != meta["attachment_id"]:
        raise InvalidInput("attachment_id must be a lowercase canonical UUID")
    digest = meta.get("ciphertext_sha256", "")
    if not _SHA256_HEX.match(digest):
        raise InvalidInput("ciphertext_sha256 must be 64 lowercase hex digits")
    declared = meta.get("ciphertext_length")
    if declared is not None and declared != str(length):
        raise InvalidInput("ciphertext_length must equal Upload-Length")
    return NewUpload(attachment_id=attachment_id, length=length, ciphertext_sha256=digest)


def _checksum(raw: str | None) -> Checksum | None:
    if raw is None:
        return None
    name, _, encoded = raw.strip().partition(" ")
    algorithm = name.lower()
    size = CHECKSUM_ALGORITHMS.get(algorithm)
    if size is None:
        # tus checksum extension: an unsupported algorithm is 400.
        raise BadRequest("Only sha1 and sha256 checksums are supported")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum must be base64") from None
    if len(digest) != size:
        raise BadRequest(f"Upload-Checksum must be a {algorithm} digest")
    return algorithm, digest


async def _body(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except InternalServerException:
        # The client went away mid-body: what arrived is kept (tus resumes from it).
        return


def _upload_url(request: Request[Any, Any, Any], settings: Settings, attachment_id: UUID) -> str:
    base = settings.public_url.rstrip("/") if settings.public_url else str(request.base_url)
    return f"{base.rstrip('/')}/v1/uploads/{attachment_id}"


def _discovery(settings: Settings) -> Response[None]:
    return Response(
        None,
        status_code=204,
        headers={
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.evidence_max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


def _progress(upload: Upload) -> dict[str, str]:
    return {"Upload-Offset": str(upload.offset), **_http_date(upload.expires_at)}


class UploadController(Controller):
    path = "/v1/uploads"
    tags = ["evidence"]  # noqa: RUF012  (Litestar reads this class attribute)

    # OPTIONS (tus discovery) shares the handler: Litestar replaces an OPTIONS handler declared
    # next to another method on the same path with its own automatic one.
    @route(
        "/",
        http_method=[HttpMethod.POST, HttpMethod.OPTIONS],
        opt=requires(Permission.EVIDENCE_UPLOAD),
        request_max_body_size=PATCH_BODY_CEILING,
        summary="tus creation (optionally with the first chunk); OPTIONS: tus discovery",
        status_code=201,
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        pool: NamedDependency[Pool],
        evidence: NamedDependency[EvidenceContext],
    ) -> Response[None]:
        if request.method == HttpMethod.OPTIONS:
            return _discovery(settings)
        _require_tus(request)
        new = _new_upload(request)
        upload = await service.create_upload(evidence, pool, principal, new)
        has_body = (request.headers.get("content-length") or "0") != "0"
        with_upload = request.headers.get("content-type") == OFFSET_MEDIA_TYPE
        # A retried creation whose upload already moved on ignores its body; the client
        # asks for the offset and resumes (the body was for offset 0).
        if has_body and with_upload and upload.offset == 0 and not upload.complete:
            upload = await service.append(
                evidence,
                pool,
                principal,
                new.attachment_id,
                offset=0,
                chunks=_body(request),
                content_length=request.content_length,
                checksum=_checksum(request.headers.get("upload-checksum")),
            )
        headers = {"Location": _upload_url(request, settings, new.attachment_id)}
        return Response(None, status_code=201, headers={**headers, **_progress(upload)})

    @head(
        "/{attachment_id:uuid}",
        opt=requires(Permission.EVIDENCE_UPLOAD),
        summary="tus offset of an upload",
    )
    async def offset(
        self,
        request: Request[Any, Any, State],
        attachment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        evidence: NamedDependency[EvidenceContext],
    ) -> Response[None]:
        _require_tus(request)
        upload = await service.upload_state(evidence, pool, principal, attachment_id)
        return Response(
            None,
            status_code=200,
            headers={"Upload-Length": str(upload.length), **_progress(upload)},
        )

    @patch(
        "/{attachment_id:uuid}",
        opt=requires(Permission.EVIDENCE_UPLOAD),
        request_max_body_size=PATCH_BODY_CEILING,
        summary="tus: append a chunk at Upload-Offset",
        status_code=204,
    )
    async def append(
        self,
        request: Request[Any, Any, State],
        attachment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        evidence: NamedDependency[EvidenceContext],
    ) -> Response[None]:
        _require_tus(request)
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if media_type != OFFSET_MEDIA_TYPE:
            raise UnsupportedMediaType(f"Send the chunk as {OFFSET_MEDIA_TYPE}")
        offset = _integer(request.headers.get("upload-offset"), "Upload-Offset")
        checksum = _checksum(request.headers.get("upload-checksum"))
        upload = await service.append(
            evidence,
            pool,
            principal,
            attachment_id,
            offset=offset,
            chunks=_body(request),
            content_length=request.content_length,
            checksum=checksum,
        )
        return Response(None, status_code=204, headers=_progress(upload))

    @delete(
        "/{attachment_id:uuid}",
        opt=requires(Permission.EVIDENCE_UPLOAD),
        summary="tus termination of an unfinished upload",
        status_code=204,
    )
    async def terminate(
        self,
        request: Request[Any, Any, State],
        attachment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        evidence: NamedDependency[EvidenceContext],
    ) -> Response[None]:
        _require_tus(request)
        await service.terminate(evidence, pool, principal, attachment_id)
        return Response(None, status_code=204)


def _range_spec(raw: str | None) -> tuple[int | None, int | None] | None:
    if raw is None:
        return None
    match = _RANGE.match(raw.strip())
    if match is None or (not match[1] and not match[2]):
        # RFC 9110 §14.2: a Range the server does not understand is ignored (whole object).
        return None
    first = int(match[1]) if match[1] else None
    last = int(match[2]) if match[2] else None
    return first, last


class AttachmentController(Controller):
    path = "/v1/attachments"
    tags = ["evidence"]  # noqa: RUF012  (Litestar reads this class attribute)

    @get(
        "/{attachment_id:uuid}",
        opt=requires(Permission.EVIDENCE_READ),
        summary="Download attachment ciphertext (Range supported); each call is a custody event",
    )
    async def download(
        self,
        request: Request[Any, Any, State],
        attachment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        evidence: NamedDependency[EvidenceContext],
    ) -> Stream:
        spec = _range_spec(request.headers.get("range"))
        download = await service.open_download(evidence, pool, principal, attachment_id, spec)
        headers = {
            "Content-Length": str(download.end - download.start + 1),
            "Content-Disposition": f'attachment; filename="{download.attachment_id}.bin"',
            "Accept-Ranges": "bytes",
            "ETag": f'"{download.ciphertext_sha256}"',
        }
        if download.partial:
            headers["Content-Range"] = f"bytes {download.start}-{download.end}/{download.total}"
        return Stream(
            download.chunks,
            status_code=206 if download.partial else 200,
            media_type="application/octet-stream",
            headers=headers,
        )

    @get(
        "/{attachment_id:uuid}/custody",
        opt=requires(Permission.EVIDENCE_CUSTODY),
        summary="The attachment's chain of custody",
    )
    async def custody(
        self,
        attachment_id: FromPath[UUID],
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
    ) -> CustodyLog:
        return await service.custody_log(pool, principal, attachment_id)
