"""The one error hierarchy. Domain code raises these; `server.problems` maps them to RFC 9457.

Each error has a stable slug that clients can switch on; the human text never carries secrets,
SQL or input echoed back, because error bodies reach phones on hostile networks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec


class FieldProblem(msgspec.Struct, frozen=True):
    """One invalid input, named by its JSON path (e.g. `$.device_key.crv`)."""

    path: str
    message: str


class TiplineError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        fields: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
        extensions: Mapping[str, str | int] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.fields = tuple(fields)
        self.headers = headers or {}
        # RFC 9457 §3.2 extension members a client acts on (e.g. `current_version`).
        self.extensions = dict(extensions or {})


class BadRequest(TiplineError):
    status, slug, title = 400, "bad-request", "The request is malformed"


class InvalidInput(TiplineError):
    status, slug, title = 422, "invalid-input", "The request failed validation"


class Unauthenticated(TiplineError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(TiplineError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(TiplineError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(TiplineError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(TiplineError):
    status, slug, title = 409, "conflict", "Conflicts with the current state"


class PreconditionFailed(TiplineError):
    # tus 1.0.0: a request without `Tus-Resumable: 1.0.0` gets 412 and the versions we speak.
    status, slug, title = 412, "unsupported-protocol-version", "Unsupported protocol version"


class PayloadTooLarge(TiplineError):
    status, slug, title = 413, "payload-too-large", "The request body is too large"


class RangeNotSatisfiable(TiplineError):
    status, slug, title = 416, "range-not-satisfiable", "The requested range is not satisfiable"


class UnsupportedMediaType(TiplineError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ChecksumMismatch(TiplineError):
    # tus checksum extension: 460 "Checksum Mismatch"; the chunk was discarded.
    status, slug, title = 460, "checksum-mismatch", "The chunk does not match its checksum"


class TooManyRequests(TiplineError):
    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, retry_after_s: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after_s))})
        self.retry_after_s = retry_after_s


class ServiceUnavailable(TiplineError):
    status, slug, title = 503, "service-unavailable", "The service is not ready"
