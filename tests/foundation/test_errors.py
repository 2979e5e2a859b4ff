"""Every error is RFC 9457 problem+json with the right status, and never leaks internals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Controller, Request, get, post
from litestar.params import FromPath

from server.app import create_app
from server.settings import Settings
from server.wire import read_json
from tests.conftest import LiveServer

PROBLEM = "application/problem+json"
BODY_LIMIT = 4096


class Sighting(msgspec.Struct, forbid_unknown_fields=True):
    place: Annotated[str, msgspec.Meta(min_length=1, max_length=50)]
    count: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    tags: list[str] = []


class ProbeController(Controller):
    """Routes that exist only in this test, to drive the app's error mapping end to end."""

    path = "/test-probe"

    @post("/sightings", status_code=201)
    async def create(self, request: Request[Any, Any, Any]) -> Sighting:
        return await read_json(request, Sighting)

    @get("/database-error")
    async def database_error(self) -> None:
        raise asyncpg.UndefinedTableError('relation "secret_table" does not exist')

    @get("/crash")
    async def crash(self) -> None:
        raise ZeroDivisionError("SELECT password FROM accounts")

    @get("/crash/{item_id:str}")
    async def crash_on_item(self, item_id: FromPath[str]) -> None:
        raise ZeroDivisionError("SELECT password FROM accounts")


@pytest.fixture
async def probe(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    limited = msgspec.structs.replace(settings, max_request_body_bytes=BODY_LIMIT)
    app = create_app(limited)
    app.register(ProbeController)
    async with (
        LiveServer(limited, app) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        yield client


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:tipline:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_valid_body_is_accepted(probe: httpx.AsyncClient) -> None:
    response = await probe.post("/test-probe/sightings", json={"place": "bar", "count": 3})
    assert response.status_code == 201
    assert response.json() == {"place": "bar", "count": 3, "tags": []}


async def test_unknown_route_is_404(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.get("/no/such/route"), 404, "not-found")


async def test_wrong_method_is_405_and_says_what_is_allowed(probe: httpx.AsyncClient) -> None:
    response = await probe.delete("/test-probe/sightings")
    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_trace_is_not_supported(probe: httpx.AsyncClient) -> None:
    assert_problem(await probe.request("TRACE", "/healthz"), 405, "method-not-allowed")


@pytest.mark.parametrize(
    "raw",
    [b"{bad json", b"", b'{"place": "x"', b'{"place": "x", "count": 1}{', b"\xff\xfe"],
)
async def test_malformed_json_is_400(probe: httpx.AsyncClient, raw: bytes) -> None:
    response = await probe.post(
        "/test-probe/sightings", content=raw, headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"place": "bar"}, "$"),
        ({"place": "bar", "count": "3"}, "$.count"),
        ({"place": "", "count": 3}, "$.place"),
        ({"place": "bar", "count": -1}, "$.count"),
        ({"place": "bar", "count": 1, "tags": [1]}, "$.tags[0]"),
        ({"place": "bar", "count": 1, "operative_id": "x"}, "$"),
        ({"place": "bar", "count": 1.5}, "$.count"),
        ({"place": "bar", "count": 10**30}, "$.count"),
        ([1, 2], "$"),
    ],
)
async def test_invalid_fields_are_422_with_their_json_path(
    probe: httpx.AsyncClient, body: dict[str, object], path: str
) -> None:
    response = await probe.post("/test-probe/sightings", json=body)
    problem = assert_problem(response, 422, "invalid-input")
    errors = problem["errors"]
    assert isinstance(errors, list)
    assert len(errors) == 1
    assert errors[0]["path"] == path
    assert errors[0]["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_non_json_content_type_is_415(probe: httpx.AsyncClient, content_type: str) -> None:
    response = await probe.post(
        "/test-probe/sightings",
        content=b'{"place": "bar", "count": 3}',
        headers={"content-type": content_type},
    )
    assert_problem(response, 415, "unsupported-media-type")


async def test_body_over_the_limit_is_413_from_content_length(probe: httpx.AsyncClient) -> None:
    oversized = b'{"place": "' + b"a" * BODY_LIMIT + b'", "count": 1}'
    response = await probe.post(
        "/test-probe/sightings", content=oversized, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "payload-too-large")


async def test_body_over_the_limit_is_413_when_streamed_without_length(
    probe: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    response = await probe.post(
        "/test-probe/sightings", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize("route", ["/test-probe/database-error", "/test-probe/crash"])
async def test_unexpected_errors_are_a_bare_500_without_internals(
    probe: httpx.AsyncClient, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = await probe.get(route)
    body = assert_problem(response, 500, "internal-error")
    for leak in ("Traceback", "asyncpg", "SELECT", "secret_table", "password", "Error"):
        assert leak not in response.text
    assert set(body) == {"type", "title", "status", "detail", "request_id"}
    # The operator can find the full story by the id the client was given.
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == body["request_id"]]
    assert logged
    assert logged[0].exc_info is not None


async def test_an_unexpected_error_logs_the_route_template_not_the_path(
    probe: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await probe.get("/test-probe/crash/4b1c9e0e-report-id")
    body = assert_problem(response, 500, "internal-error")
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == body["request_id"]]
    assert [getattr(r, "route", None) for r in logged] == ["/test-probe/crash/{item_id}"]
    assert all("4b1c9e0e" not in r.getMessage() for r in logged)
