"""`/v1/audit` over real loopback HTTP, with a stand-in `principal` dependency."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import httpx
import pytest
import uvicorn
from litestar import Litestar
from litestar.di import Provide

from server import db
from server.audit import sealer
from server.audit.routes import AuditController
from server.identity.permissions import Role
from server.identity.principal import Principal
from server.problems import EXCEPTION_HANDLERS
from tests.audit.conftest import record_events


@asynccontextmanager
async def serve(pool: db.Pool, role: Role) -> AsyncIterator[httpx.AsyncClient]:
    # The identity guard is the app's (tests/identity); here the principal is given, so these
    # tests show what the controller and row-level security do with it.
    principal = Principal(
        account_id=uuid4(),
        role=role,
        handle="tester",
        session_id=uuid4(),
        device_id=uuid4(),
        duress=False,
        device_key={},
    )
    app = Litestar(
        route_handlers=[AuditController],
        dependencies={
            "pool": Provide(lambda: pool, sync_to_thread=False),
            "principal": Provide(lambda: principal, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        logging_config=None,
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_list_pages_through_the_log(app_pool: db.Pool) -> None:
    ids = await record_events(app_pool, 3)
    async with serve(app_pool, Role.INVESTIGATOR) as http:
        first = await http.get("/v1/audit", params={"limit": 2})
        assert first.status_code == 200
        body = first.json()
        assert [e["id"] for e in body["events"]] == [ids[2], ids[1]]
        assert body["events"][0]["action"] == "report.received"
        assert body["events"][0]["detail"] == {"n": 2, "size": 2048, "resumed": False}
        second = await http.get(
            "/v1/audit", params={"limit": 2, "before_id": body["next_before_id"]}
        )
        assert [e["id"] for e in second.json()["events"]] == [ids[0]]
        assert second.json()["next_before_id"] is None
        filtered = await http.get("/v1/audit", params={"action": "login.failed"})
        assert filtered.json()["events"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 1000000}, {"limit": 0}, {"before_id": 0}, {"action": "made.up"}, {"limit": "1e3"}],
)
async def test_bad_parameters_are_a_problem_not_a_crash(
    app_pool: db.Pool, params: dict[str, str | int]
) -> None:
    async with serve(app_pool, Role.ADMIN) as http:
        response = await http.get("/v1/audit", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_an_operative_principal_reads_nothing_even_unguarded(app_pool: db.Pool) -> None:
    await record_events(app_pool, 2)
    async with serve(app_pool, Role.OPERATIVE) as http:
        response = await http.get("/v1/audit")
    assert response.status_code == 200
    assert response.json()["events"] == []


async def test_verify_endpoint_reports_the_chain(app_pool: db.Pool) -> None:
    await record_events(app_pool, 4)
    await sealer.seal_pending(app_pool, batch=10, signing_key=None)
    async with serve(app_pool, Role.ADMIN) as http:
        response = await http.get("/v1/audit/verify")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["head_position"], body["reason"]) == (True, 4, None)
