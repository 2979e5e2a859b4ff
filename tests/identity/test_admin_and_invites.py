"""Invites are one-time, short-lived and role-bound; admins manage accounts but never content."""

from __future__ import annotations

import asyncpg
import pytest

from clients.reference_client.api import ApiError
from tests.actors import Actor, World
from tests.conftest import TestDatabase


async def test_an_invite_code_works_once(world: World) -> None:
    investigator = await world.first_investigator()
    payload = await investigator.client.invite(investigator.token(), "operative", "tuk-tuk-7")
    assert len(payload.code) == 32  # 160 bits of base32
    first = Actor(world, "tuk-tuk-7", "operative")
    await first.enrol(payload.code)
    second = Actor(world, "tuk-tuk-7", "operative")
    with pytest.raises(ApiError) as refused:
        await second.enrol(payload.code)
    assert refused.value.problem.status == 401


async def test_an_expired_invite_is_refused(world: World, database: TestDatabase) -> None:
    investigator = await world.first_investigator()
    payload = await investigator.client.invite(investigator.token(), "operative", "dj-night")
    conn = await asyncpg.connect(database.admin_url)
    try:
        await conn.execute(
            "UPDATE tipline.invites SET expires_at = now() - interval '1 second'"
            " , created_at = now() - interval '1 hour' WHERE handle = 'dj-night'"
        )
    finally:
        await conn.close()
    with pytest.raises(ApiError) as refused:
        await Actor(world, "dj-night", "operative").enrol(payload.code)
    assert refused.value.problem.status == 401


async def test_invite_codes_are_stored_only_as_hashes(world: World, database: TestDatabase) -> None:
    investigator = await world.first_investigator()
    payload = await investigator.client.invite(investigator.token(), "operative", "guide-3")
    conn = await asyncpg.connect(database.admin_url)
    try:
        dump = await conn.fetchval("SELECT string_agg(t::text, ' ') FROM tipline.invites t")
    finally:
        await conn.close()
    assert payload.code not in dump


@pytest.mark.parametrize(
    ("inviter", "role", "status"),
    [
        ("admin", "investigator", 403),
        ("admin", "operative", 201),
        ("investigator", "admin", 201),
        ("operative", "operative", 403),
        ("officer", "operative", 403),
    ],
)
async def test_who_may_invite_whom(world: World, inviter: str, role: str, status: int) -> None:
    investigator = await world.first_investigator()
    person = (
        investigator if inviter == "investigator" else await world.invited(investigator, inviter)
    )
    response = await person.client.call(
        "POST", "/v1/invites", person.token(), json={"role": role, "handle": world.new_handle(role)}
    )
    assert response.status_code == status


async def test_a_taken_handle_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    response = await investigator.client.call(
        "POST",
        "/v1/invites",
        investigator.token(),
        json={"role": "operative", "handle": investigator.handle},
    )
    assert response.status_code == 409


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short pass", "password-too-short"),
        ("1qaz2wsx3edc4rfv", "password-blocklisted"),
        ("aaaaaaaaaaaaaaaaaaaa", "password-too-weak"),
        ("x" * 257, "password-too-long"),
    ],
)
async def test_weak_passwords_are_refused_with_the_reason(
    world: World, password: str, reason: str
) -> None:
    investigator = await world.first_investigator()
    payload = await investigator.client.invite(investigator.token(), "operative", "moto-driver")
    actor = Actor(world, "moto-driver", "operative")
    actor.password = password
    with pytest.raises(ApiError) as refused:
        await actor.enrol(payload.code)
    assert refused.value.problem.status == 422
    assert refused.value.problem.type == f"urn:tipline:problem:{reason}"
    # The refused enrolment left the invite usable.
    actor.password = "a much better passphrase for the moto driver"
    await actor.enrol(payload.code)


async def test_a_password_built_from_the_handle_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    payload = await investigator.client.invite(investigator.token(), "operative", "riverside")
    actor = Actor(world, "riverside", "operative")
    actor.password = "Riverside2026!!Riverside"
    with pytest.raises(ApiError) as refused:
        await actor.enrol(payload.code)
    assert refused.value.problem.type == "urn:tipline:problem:password-contains-handle"


async def test_suspension_ends_sessions_and_blocks_login_until_reactivated(world: World) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    officer = await world.invited(investigator, "officer")
    base = f"/v1/accounts/{officer.account_id}"
    assert (await admin.client.call("POST", f"{base}/suspend", admin.token())).status_code == 204
    assert (await officer.client.call("GET", "/v1/me", officer.token())).status_code == 401
    world.next_step()
    assert (
        await officer.client.login_response(officer.handle, officer.password, officer.totp())
    ).status_code == 401
    assert (await admin.client.call("POST", f"{base}/reactivate", admin.token())).status_code == 204
    world.next_step()
    await officer.login()
    assert (await officer.client.call("GET", "/v1/me", officer.token())).status_code == 200


async def test_a_factor_reset_forces_re_enrolment(world: World) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    operative = await world.invited(investigator, "operative")
    response = await admin.client.call(
        "POST", f"/v1/accounts/{operative.account_id}/reset", admin.token()
    )
    assert response.status_code == 201
    code = response.json()["payload"]["code"]
    assert "password" not in response.text.lower()
    assert (await operative.client.call("GET", "/v1/me", operative.token())).status_code == 401
    world.next_step()
    old = await operative.client.login_response(
        operative.handle, operative.password, operative.totp()
    )
    assert old.status_code == 401

    # The operative re-enrols on a new phone with a new password and TOTP seed.
    again = Actor(world, operative.handle, "operative")
    await again.enrol(code)
    assert again.account_id == operative.account_id
    world.next_step()
    await again.login()
    assert (await again.client.call("GET", "/v1/me", again.token())).status_code == 200


async def test_an_admin_cannot_act_on_themselves(world: World) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    for action in ("suspend", "reset"):
        response = await admin.client.call(
            "POST", f"/v1/accounts/{admin.account_id}/{action}", admin.token()
        )
        assert response.status_code == 403
