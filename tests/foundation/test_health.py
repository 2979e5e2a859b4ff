from __future__ import annotations

import httpx
import msgspec
import pytest

from server.settings import Settings
from tests.conftest import LiveServer, free_port

PROBLEM = "application/problem+json"


async def test_healthz_answers_without_touching_the_database(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_the_database_answers(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_is_503_problem_when_the_database_is_unreachable(settings: Settings) -> None:
    # Nothing listens on this port, so every pool connection attempt is refused.
    url = f"postgresql://tipline_app@127.0.0.1:{free_port()}/tipline"
    settings = msgspec.structs.replace(
        settings, database_url=url, db_pool_min_size=0, db_connect_timeout_s=2.0
    )
    async with LiveServer(settings) as server, httpx.AsyncClient(base_url=server.base_url) as http:
        response = await http.get("/readyz")
        assert (await http.get("/healthz")).status_code == 200
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:tipline:problem:service-unavailable"
    assert body["status"] == 503
    assert body["request_id"] == response.headers["x-request-id"]
    assert "127.0.0.1" not in response.text, "connection details must not reach the client"


async def test_openapi_document_is_served_as_openapi_3_1(http: httpx.AsyncClient) -> None:
    response = await http.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert {"/healthz", "/readyz"} <= set(document["paths"])


@pytest.mark.parametrize("path", ["/healthz", "/does-not-exist"])
async def test_every_response_carries_a_fresh_request_id(
    http: httpx.AsyncClient, path: str
) -> None:
    first = await http.get(path)
    second = await http.get(path)
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


async def test_responses_carry_the_fixed_security_headers(http: httpx.AsyncClient) -> None:
    for response in (await http.get("/healthz"), await http.get("/missing")):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "server" not in response.headers
        assert "access-control-allow-origin" not in response.headers
