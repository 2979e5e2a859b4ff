"""Decoding request bodies: strictly typed, in one pass, with errors that name the field.

Litestar's own body injection parses JSON into Python objects and then converts them with
`strict=False`, which would turn "3" into 3; a security API must refuse the wrong type
instead (SEC-API-01). A compiled msgspec decoder per type is also the fastest way in.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from litestar import Request

from server.errors import BadRequest, FieldProblem, InvalidInput, UnsupportedMediaType

T = TypeVar("T")

JSON_MEDIA_TYPE = "application/json"


_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(type_: Any) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    return decoder


def decode_json(raw: bytes, type_: type[T]) -> T:
    try:
        value: T = _decoder(type_).decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidInput(fields=[_field_problem(str(exc))]) from None
    except (msgspec.DecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the decoder will follow.
        raise BadRequest("The request body is not valid JSON") from None
    return value


async def read_json(request: Request[Any, Any, Any], type_: type[T]) -> T:
    """The request's JSON body as `type_`; the body size limit applies while reading."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise UnsupportedMediaType("Send the body as application/json")
    return decode_json(await request.body(), type_)


def _field_problem(message: str) -> FieldProblem:
    # msgspec: "Expected `int`, got `str` - at `$.count`"; a top-level error has no " - at".
    reason, separator, path = message.rpartition(" - at `")
    if not separator:
        return FieldProblem(path="$", message=message)
    return FieldProblem(path=path.rstrip("`"), message=reason)
