"""Duress: a coerced operative's login looks normal, sees nothing real, and raises the alarm."""

from __future__ import annotations

import secrets

import asyncpg

from tests.actors import Actor, World
from tests.conftest import TestDatabase


async def set_duress(operative: Actor) -> str:
    duress = secrets.token_urlsafe(18)
    response = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": operative.password, "duress_password": duress},
    )
    assert response.status_code == 204
    return duress


def shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


async def test_duress_login_looks_normal_ends_real_sessions_and_alerts(
    world: World, database: TestDatabase
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    duress = await set_duress(operative)
    real_session = operative.token()

    world.next_step()
    normal = await operative.client.login_response(
        operative.handle, operative.password, operative.totp()
    )
    world.next_step()
    coerced = await operative.client.login_response(operative.handle, duress, operative.totp())
    assert normal.status_code == coerced.status_code == 201
    assert shape(coerced.json()) == shape(normal.json())
    assert set(coerced.headers) == set(normal.headers)

    # The coerced session works and shows the same account...
    me = await operative.client.call("GET", "/v1/me", coerced.json()["access_token"])
    assert me.status_code == 200
    assert me.json()["handle"] == operative.handle
    # ...while every real session is gone.
    for token in (real_session.access_token, normal.json()["access_token"]):
        assert (await operative.client.call("GET", "/v1/me", token)).status_code == 401

    listing = await investigator.client.call("GET", "/v1/accounts", investigator.token())
    alarms = {a["handle"]: a["duress_at"] for a in listing.json()["accounts"]}
    assert alarms[operative.handle] is not None
    conn = await asyncpg.connect(database.admin_url)
    try:
        actions = [
            r["action"]
            for r in await conn.fetch(
                "SELECT action FROM tipline.audit_events WHERE subject_id = $1",
                str(operative.account_id),
            )
        ]
    finally:
        await conn.close()
    assert "duress.triggered" in actions


async def test_duress_password_must_differ_and_needs_the_current_password(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    same = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": operative.password, "duress_password": operative.password},
    )
    assert same.status_code == 409
    wrong = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": "not my password at all", "duress_password": secrets.token_urlsafe(18)},
    )
    assert wrong.status_code == 401


async def test_duress_and_normal_logins_cost_the_same_argon2_work(world: World) -> None:
    # Timing on a shared machine is too noisy to compare directly; what makes the paths
    # indistinguishable is that each runs exactly two full argon2 verifications. Count the
    # verifications argon2 itself performs.
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    duress = await set_duress(operative)
    hasher = world.identity.hasher
    real = hasher._argon2
    calls: list[str] = []

    class CountingArgon2:
        def verify(self, stored: str, secret: bytes) -> bool:
            calls.append(stored[:9])
            return real.verify(stored, secret)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    hasher._argon2 = CountingArgon2()  # type: ignore[assignment]
    counts = []
    for password, handle in (
        (operative.password, operative.handle),
        (duress, operative.handle),
        ("a wrong password entirely", operative.handle),
        ("a wrong password entirely", "nobody-here"),
    ):
        world.next_step()
        calls.clear()
        await operative.client.login_response(handle, password, operative.totp())
        counts.append(len(calls))
    assert counts == [2, 2, 2, 2]
    assert all(prefix == "$argon2id" for prefix in calls)
