"""Maps every exception to an RFC 9457 problem+json response; the only place that does.

Anything the domain did not anticipate becomes a bare 500 that carries the request id and
nothing else: stack traces and SQL stay in the server log.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from server import errors
from server.logs import request_id_of

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:tipline:problem:"

_log = logging.getLogger("tipline.errors")


class Problem(msgspec.Struct, omit_defaults=True):
    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None
    errors: list[errors.FieldProblem] | None = None


def problem_response(
    request: Request[Any, Any, Any], exc: errors.TiplineError
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = msgspec.to_builtins(
        Problem(
            type=TYPE_PREFIX + exc.slug,
            title=exc.title,
            status=exc.status,
            detail=exc.detail,
            request_id=request_id_of(request.scope),
            errors=list(exc.fields) or None,
        )
    )
    # Extension members (RFC 9457 §3.2) never override the standard ones.
    body.update({k: v for k, v in exc.extensions.items() if k not in body})
    return Response(
        body, status_code=exc.status, media_type=PROBLEM_MEDIA_TYPE, headers=exc.headers
    )


# Litestar's own exceptions, by status, to our hierarchy; their text is framework-written and
# may echo input, so we keep only our fixed titles.
_BY_STATUS: dict[int, type[errors.TiplineError]] = {
    400: errors.BadRequest,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.PayloadTooLarge,
    415: errors.UnsupportedMediaType,
    429: errors.TooManyRequests,
    503: errors.ServiceUnavailable,
}

# msgspec's messages look like "Expected `int`, got `str` - at `$.port`"; Litestar strips the
# path into `key`. Both are safe to return: they describe the schema, not the value.
_MSGSPEC_PATH = re.compile(r" - at `(?P<path>\$[^`]*)`$")


def _field_problems(exc: ValidationException) -> list[errors.FieldProblem]:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = item.get("key")
        source = item.get("source")
        match = _MSGSPEC_PATH.search(message)
        if match:
            path, message = match["path"], message[: match.start()]
        elif key and source == "body":
            path = f"$.{key}"
        elif key:
            path = f"{source or 'param'}:{key}"
        else:
            path = "$"
        problems.append(errors.FieldProblem(path=path, message=message))
    return problems


def _on_tipline_error(
    request: Request[Any, Any, Any], exc: errors.TiplineError
) -> Response[dict[str, Any]]:
    return problem_response(request, exc)


def _on_validation(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    problems = _field_problems(exc)
    if not problems:
        # Litestar raises a bare ValidationException when the body is not JSON at all.
        return problem_response(request, errors.BadRequest("The request body is not valid JSON"))
    return problem_response(request, errors.InvalidInput(fields=problems))


def _on_http_exception(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[dict[str, Any]]:
    if isinstance(exc, NotFoundException):
        return problem_response(request, errors.NotFound("No such resource"))
    if isinstance(exc, MethodNotAllowedException):
        allowed = (exc.headers or {}).get("allow")
        headers = {"Allow": allowed} if allowed else None
        return problem_response(request, errors.MethodNotAllowed(headers=headers))
    if exc.status_code >= 500:
        return _on_unexpected(request, exc)
    error_type = _BY_STATUS.get(exc.status_code, errors.BadRequest)
    if error_type is errors.TooManyRequests:
        return problem_response(request, errors.TooManyRequests(retry_after_s=1))
    problem = error_type()
    problem.status = exc.status_code
    return problem_response(request, problem)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    _log.error(
        "unhandled exception",
        exc_info=exc,
        # The route template, never the path: a path carries report and account ids.
        extra={
            "request_id": request_id_of(request.scope),
            "route": request.scope.get("path_template", "<unmatched>"),
        },
    )
    return problem_response(request, errors.TiplineError("An unexpected error occurred"))


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    errors.TiplineError: _on_tipline_error,
    ValidationException: _on_validation,
    HTTPException: _on_http_exception,
    Exception: _on_unexpected,
}
