"""Enrolment and login need every factor: password, fresh TOTP and the registered device."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from clients.reference_client.api import ApiError
from clients.reference_client.device import DeviceKeyPair
from server.errors import Forbidden
from server.identity import service
from tests.actors import World
from tests.conftest import TestDatabase


async def audit_actions(database: TestDatabase) -> list[str]:
    conn = await asyncpg.connect(database.admin_url)
    try:
        rows = await conn.fetch("SELECT action FROM tipline.audit_events ORDER BY id")
    finally:
        await conn.close()
    return [r["action"] for r in rows]


async def test_first_investigator_enrols_logs_in_and_out(world: World) -> None:
    investigator = await world.first_investigator()
    session = investigator.token()
    assert session.token_type == "DPoP"
    assert session.account.role == "investigator"
    me = await investigator.client.me(session)
    assert (me.handle, me.status) == (investigator.handle, "active")

    await investigator.client.logout(session)
    with pytest.raises(ApiError) as refused:
        await investigator.client.me(session)
    assert refused.value.problem.status == 401


async def test_the_bootstrap_invite_is_refused_once_an_investigator_exists(world: World) -> None:
    await world.first_investigator()
    with pytest.raises(Forbidden):
        await service.bootstrap_invite(world.identity, world.app.state.pool, "second-boss")


@pytest.mark.parametrize("wrong", ["password", "totp", "device", "handle"])
async def test_each_missing_factor_gets_the_same_401_and_an_audit_row(
    world: World, database: TestDatabase, wrong: str
) -> None:
    investigator = await world.first_investigator()
    world.next_step()
    before = (await audit_actions(database)).count("login.failed")
    client = investigator.client
    if wrong == "device":
        client = world.client(DeviceKeyPair.generate())
    response = await client.login_response(
        "no-such-person" if wrong == "handle" else investigator.handle,
        "a wrong but long password" if wrong == "password" else investigator.password,
        investigator.totp(step_offset=-3) if wrong == "totp" else investigator.totp(),
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    del body["request_id"]
    assert body == {
        "type": "urn:tipline:problem:unauthenticated",
        "title": "Authentication required",
        "status": 401,
        "detail": "Login failed",
    }
    assert (await audit_actions(database)).count("login.failed") == before + 1


async def test_login_without_a_dpop_proof_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    world.next_step()
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post(
            "/v1/sessions",
            json={
                "handle": investigator.handle,
                "password": investigator.password,
                "totp_code": investigator.totp(),
            },
        )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("DPoP")


async def test_a_totp_code_is_accepted_once(world: World) -> None:
    investigator = await world.first_investigator()
    world.next_step()
    code = investigator.totp()
    first = await investigator.client.login_response(
        investigator.handle, investigator.password, code
    )
    assert first.status_code == 201
    again = await investigator.client.login_response(
        investigator.handle, investigator.password, code
    )
    assert again.status_code == 401
    # The previous step is older than the one just used, so it is refused too.
    older = await investigator.client.login_response(
        investigator.handle, investigator.password, investigator.totp(step_offset=-1)
    )
    assert older.status_code == 401
    world.next_step()
    assert (
        await investigator.client.login_response(
            investigator.handle, investigator.password, investigator.totp()
        )
    ).status_code == 201


@pytest.mark.parametrize(("offset", "accepted"), [(-1, True), (0, True), (1, False), (-2, False)])
async def test_only_the_current_and_previous_totp_steps_are_accepted(
    world: World, offset: int, accepted: bool
) -> None:
    investigator = await world.first_investigator()
    world.clock.advance(90)
    # To the middle of a step, so a step boundary cannot pass between computing the code and
    # the server checking it (which would turn "previous" into "two back").
    world.clock.advance(15 - world.clock() % 30)
    response = await investigator.client.login_response(
        investigator.handle, investigator.password, investigator.totp(step_offset=offset)
    )
    assert (response.status_code == 201) is accepted


FULL_WIDTH_DIGITS = "\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize(
    "code", [FULL_WIDTH_DIGITS, " 123456", "123456\n", "12345", "1234567", 123456]
)
async def test_malformed_totp_codes_never_reach_the_library(world: World, code: object) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        response = await http.post(
            "/v1/sessions", json={"handle": "someone", "password": "x" * 20, "totp_code": code}
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "$.totp_code"


async def test_concurrent_logins_with_one_code_admit_exactly_one(world: World) -> None:
    investigator = await world.first_investigator()
    world.next_step()
    code = investigator.totp()
    responses = await asyncio.gather(
        *(
            investigator.client.login_response(investigator.handle, investigator.password, code)
            for _ in range(5)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    # One wins; the rest are refused (replayed step, or held back by the per-handle gate).
    assert statuses.count(201) == 1
    assert set(statuses) <= {201, 401, 429}
