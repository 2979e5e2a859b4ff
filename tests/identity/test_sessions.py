"""Sessions are bound to the device key: a token alone, a replayed proof, or another device's
proof is refused; idle and absolute limits hold; revocation is immediate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from clients.reference_client.device import DeviceKeyPair, make_proof
from server.settings import Settings
from tests.actors import World
from tests.conftest import world_with


async def test_a_replayed_dpop_proof_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    token = investigator.token().access_token
    proof = investigator.client.proof("GET", "/v1/me", access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        assert (await http.get("/v1/me", headers=headers)).status_code == 200
        replayed = await http.get("/v1/me", headers=headers)
    assert replayed.status_code == 401
    assert replayed.headers["www-authenticate"].startswith("DPoP")


async def test_a_token_without_its_proof_is_useless(world: World) -> None:
    investigator = await world.first_investigator()
    token = investigator.token().access_token
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        bare = await http.get("/v1/me", headers={"Authorization": f"DPoP {token}"})
        bearer = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        in_query = await http.get(f"/v1/me?access_token={token}")
    assert [bare.status_code, bearer.status_code, in_query.status_code] == [401, 401, 401]


async def test_a_token_used_from_another_device_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    # The operative's device signs a perfect proof for the investigator's stolen token.
    thief = world.client(operative.device)
    response = await thief.call("GET", "/v1/me", investigator.token())
    assert response.status_code == 401
    stranger = world.client(DeviceKeyPair.generate())
    assert (await stranger.call("GET", "/v1/me", investigator.token())).status_code == 401


async def test_a_proof_for_another_request_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    token = investigator.token().access_token
    cases = [
        make_proof(investigator.device, "POST", world.base_url + "/v1/me", access_token=token),
        make_proof(investigator.device, "GET", world.base_url + "/v1/other", access_token=token),
        make_proof(
            investigator.device, "GET", "https://elsewhere.example/v1/me", access_token=token
        ),
        make_proof(investigator.device, "GET", world.base_url + "/v1/me", access_token="x" * 43),
        make_proof(
            investigator.device, "GET", world.base_url + "/v1/me", access_token=token, now=1.0
        ),
    ]
    async with httpx.AsyncClient(base_url=world.base_url) as http:
        for proof in cases:
            response = await http.get(
                "/v1/me", headers={"Authorization": f"DPoP {token}", "DPoP": proof}
            )
            assert response.status_code == 401


async def test_a_modified_token_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    token = investigator.token().access_token
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert (await investigator.client.call("GET", "/v1/me", tampered)).status_code == 401


@pytest.fixture
async def short_sessions(settings: Settings) -> AsyncIterator[World]:
    async with world_with(
        settings, session_idle_investigator_s=2, session_lifetime_investigator_s=4
    ) as world:
        yield world


async def test_idle_and_absolute_timeouts_are_enforced_by_the_server(
    short_sessions: World,
) -> None:
    world = short_sessions
    investigator = await world.first_investigator()
    session = investigator.token()
    assert session.idle_timeout_s == 2
    # Activity inside the idle window keeps the session alive...
    for _ in range(2):
        await asyncio.sleep(1.2)
        assert (await investigator.client.call("GET", "/v1/me", session)).status_code == 200
    # ...but never past its absolute lifetime.
    await asyncio.sleep(1.8)
    assert (await investigator.client.call("GET", "/v1/me", session)).status_code == 401

    world.next_step()
    fresh = await investigator.login()
    await asyncio.sleep(2.3)
    assert (await investigator.client.call("GET", "/v1/me", fresh)).status_code == 401


async def test_revoking_a_device_ends_its_sessions_at_once(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    session = operative.token()
    assert (await operative.client.call("GET", "/v1/me", session)).status_code == 200
    revoked = await operative.client.call(
        "POST", f"/v1/devices/{session.device_id}/revoke", session
    )
    assert revoked.status_code == 204
    assert (await operative.client.call("GET", "/v1/me", session)).status_code == 401
    world.next_step()
    refused = await operative.client.login_response(
        operative.handle, operative.password, operative.totp()
    )
    assert refused.status_code == 401


async def test_nobody_but_an_admin_revokes_another_accounts_device(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    admin = await world.invited(investigator, "admin")
    path = f"/v1/devices/{operative.token().device_id}/revoke"
    assert (await investigator.client.call("POST", path, investigator.token())).status_code == 404
    assert (await operative.client.call("GET", "/v1/me", operative.token())).status_code == 200
    assert (await admin.client.call("POST", path, admin.token())).status_code == 204
    assert (await operative.client.call("GET", "/v1/me", operative.token())).status_code == 401
