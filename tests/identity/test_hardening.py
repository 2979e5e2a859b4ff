"""Properties found missing in review, each with the attack that broke it."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from clients.reference_client.device import DeviceKeyPair
from server import db
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import TestDatabase, world_with


async def audit_count(database: TestDatabase, action: str) -> int:
    conn = await asyncpg.connect(database.admin_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM tipline.audit_events WHERE action = $1", action
        )
    finally:
        await conn.close()
    return count


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET role = 'investigator' WHERE id = current_account_id()",
        "UPDATE accounts SET duress_at = NULL, locked_at = NULL WHERE id = current_account_id()",
        "UPDATE accounts SET totp_last_step = NULL WHERE id = current_account_id()",
        "UPDATE accounts SET status = 'enrolling' WHERE id = current_account_id()",
        "UPDATE sessions SET ended_at = NULL WHERE account_id = current_account_id()",
        "UPDATE sessions SET expires_at = now() + interval '10 years'"
        " WHERE account_id = current_account_id()",
        "UPDATE devices SET revoked_at = NULL WHERE account_id = current_account_id()",
    ],
)
async def test_an_account_cannot_raise_its_own_standing(
    world: World, settings: Settings, statement: str
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    await operative.client.logout(operative.token())
    assert operative.token().device_id is not None
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    try:
        async with db.transaction(pool, role="authenticator") as conn:
            await conn.execute(
                "UPDATE accounts SET duress_at = now() WHERE id = $1", operative.account_id
            )
        async with db.transaction(pool, account_id=operative.account_id, role="operative") as conn:
            await conn.execute(
                "UPDATE devices SET revoked_at = now() WHERE account_id = current_account_id()"
            )
        async with db.transaction(pool, account_id=operative.account_id, role="operative") as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await pool.close()


async def test_an_admin_cannot_take_over_or_suspend_an_investigator(world: World) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    for action in ("reset", "suspend", "unlock"):
        response = await admin.client.call(
            "POST", f"/v1/accounts/{investigator.account_id}/{action}", admin.token()
        )
        assert response.status_code == 403, action
    assert (
        await investigator.client.call("GET", "/v1/me", investigator.token())
    ).status_code == 200


async def test_an_admin_cannot_reset_an_investigator_even_in_sql(
    world: World, settings: Settings
) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    try:
        async with db.transaction(pool, account_id=admin.account_id, role="admin") as conn:
            result = await conn.execute(
                "UPDATE accounts SET status = 'enrolling', password_hash = NULL,"
                " totp_seed_sealed = NULL WHERE id = $1",
                investigator.account_id,
            )
            assert result == "UPDATE 0"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "INSERT INTO invites (code_hash, role, handle, created_by, expires_at)"
                    " VALUES ($1, 'investigator', 'sneaky', $2, now() + interval '5 minutes')",
                    secrets.token_bytes(32),
                    admin.account_id,
                )
    finally:
        await pool.close()


async def test_parallel_guesses_cannot_outrun_the_back_off(settings: Settings) -> None:
    async with world_with(
        settings, login_backoff_after=3, login_backoff_base_s=30.0, login_hard_lock_after=50
    ) as world:
        investigator = await world.first_investigator()
        world.next_step()
        guesses = [
            investigator.client.login_response(
                investigator.handle, f"wrong guess number {i:02d}", investigator.totp()
            )
            for i in range(15)
        ]
        right = investigator.client.login_response(
            investigator.handle, investigator.password, investigator.totp()
        )
        responses = await asyncio.gather(*guesses, right)
        codes = [r.status_code for r in responses]
        # At most `login_backoff_after` attempts are let through to the password check.
        assert codes.count(401) + codes.count(201) <= 3
        assert codes.count(429) >= 13


async def test_audit_rows_cannot_be_written_in_someone_elses_name(
    world: World, settings: Settings
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    forged = (
        "WITH id AS (SELECT nextval(pg_get_serial_sequence('tipline.audit_events', 'id')) AS v)"
        " INSERT INTO audit_events (id, actor_id, actor_role, action)"
        " OVERRIDING SYSTEM VALUE SELECT v, $1, 'investigator', 'account.unlocked' FROM id"
    )
    try:
        for context in ({"account_id": operative.account_id, "role": "operative"}, {}):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with db.transaction(pool, **context) as conn:  # type: ignore[arg-type]
                    await conn.execute(forged, investigator.account_id)
    finally:
        await pool.close()


async def test_refusals_are_audited(world: World, database: TestDatabase) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    denied = await audit_count(database, "access.denied")
    failed = await audit_count(database, "login.failed")

    assert (
        await operative.client.call("GET", "/v1/accounts", operative.token())
    ).status_code == 403
    anonymous = world.client(DeviceKeyPair.generate())
    assert (await anonymous._http.get("/v1/me")).status_code == 401
    assert (
        await anonymous._http.post(
            "/v1/sessions", json={"handle": "someone", "password": "x" * 20, "totp_code": "123456"}
        )
    ).status_code == 401
    assert await audit_count(database, "access.denied") == denied + 2
    assert await audit_count(database, "login.failed") == failed + 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"handle": "ab\u0000cd", "password": "x" * 20, "totp_code": "123456"}, 422),
        ({"handle": "A" * 300, "password": "x" * 20, "totp_code": "123456"}, 422),
    ],
)
async def test_odd_handles_are_refused_cleanly(
    world: World, body: dict[str, str], status: int
) -> None:
    client = world.client(DeviceKeyPair.generate())
    response = await client._http.post(
        "/v1/sessions", json=body, headers={"DPoP": client.proof("POST", "/v1/sessions")}
    )
    assert response.status_code == status


async def test_deeply_nested_json_is_a_400_not_a_crash(world: World) -> None:
    client = world.client(DeviceKeyPair.generate())
    nested = "[" * 5000 + "]" * 5000
    body = (
        '{"invite_code": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "password": "x", '
        f'"device_key": {{"a": {nested}}}, "age_recipient": "age1"}}'
    )
    response = await client._http.post(
        "/v1/enrolments", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in {400, 422}


async def test_reset_revokes_the_old_device_and_the_same_key_may_re_enrol(world: World) -> None:
    investigator = await world.first_investigator()
    admin = await world.invited(investigator, "admin")
    operative = await world.invited(investigator, "operative")
    response = await admin.client.call(
        "POST", f"/v1/accounts/{operative.account_id}/reset", admin.token()
    )
    code = response.json()["payload"]["code"]
    again = Actor(world, operative.handle, "operative")
    again.device = operative.device
    again.client = world.client(operative.device)
    await again.enrol(code)
    world.next_step()
    await again.login()


async def test_a_duress_session_gets_normal_answers_and_changes_nothing(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    duress = secrets.token_urlsafe(18)
    response = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": operative.password, "duress_password": duress},
    )
    assert response.status_code == 204
    world.next_step()
    coerced = await operative.client.login(operative.handle, duress, operative.totp())

    same = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        coerced,
        json={"password": duress, "duress_password": duress},
    )
    assert same.status_code == 409
    changed = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        coerced,
        json={"password": duress, "duress_password": secrets.token_urlsafe(18)},
    )
    assert changed.status_code == 204
    revoked = await operative.client.call(
        "POST", f"/v1/devices/{coerced.device_id}/revoke", coerced
    )
    assert revoked.status_code == 204
    # Nothing happened: the real password and device still log in.
    world.next_step()
    await operative.login()


async def test_the_duress_password_route_is_throttled_and_audited(
    settings: Settings, database: TestDatabase
) -> None:
    async with world_with(
        settings, login_backoff_after=3, login_backoff_base_s=30.0, login_hard_lock_after=50
    ) as world:
        investigator = await world.first_investigator()
        operative = await world.invited(investigator, "operative")
        before = await audit_count(database, "login.failed")
        codes = []
        for i in range(5):
            response = await operative.client.call(
                "PUT",
                "/v1/me/duress-password",
                operative.token(),
                json={"password": f"guess number {i} is wrong", "duress_password": "z" * 20},
            )
            codes.append(response.status_code)
        assert codes[:3] == [401, 401, 401]
        assert codes[3:] == [429, 429]
        assert await audit_count(database, "login.failed") == before + 3


async def test_forwarded_addresses_count_only_from_a_trusted_proxy(settings: Settings) -> None:
    async with world_with(
        settings,
        source_attempts_per_window=2,
        # Windows are fixed; a day-long one keeps a boundary from falling inside the test.
        source_window_s=86_400,
        trusted_proxies="127.0.0.1",
    ) as world:
        client = world.client(DeviceKeyPair.generate())
        body = {"handle": "someone", "password": "x" * 20, "totp_code": "123456"}

        async def attempt(forwarded: str) -> int:
            response = await client._http.post(
                "/v1/sessions",
                json=body,
                headers={
                    "DPoP": client.proof("POST", "/v1/sessions"),
                    "X-Forwarded-For": forwarded,
                },
            )
            return response.status_code

        assert [await attempt("203.0.113.7") for _ in range(3)] == [401, 401, 429]
        # Another client behind the same proxy has its own allowance.
        assert await attempt("198.51.100.9") == 401
    async with world_with(settings, source_attempts_per_window=2, source_window_s=86_400) as world:
        client = world.client(DeviceKeyPair.generate())
        # Not trusted: the header is ignored and everything counts against the real peer.
        statuses = []
        for forwarded in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
            # A fresh handle each time, so only the per-source limit can refuse.
            response = await client._http.post(
                "/v1/sessions",
                json={"handle": f"other-{forwarded}", "password": "x" * 20, "totp_code": "123456"},
                headers={
                    "DPoP": client.proof("POST", "/v1/sessions"),
                    "X-Forwarded-For": forwarded,
                },
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 429]


async def test_expired_replay_entries_are_swept(world: World, database: TestDatabase) -> None:
    from server.identity.service import sweep_expired

    investigator = await world.first_investigator()
    await investigator.client.me(investigator.token())
    conn = await asyncpg.connect(database.admin_url)
    try:
        before = await conn.fetchval("SELECT count(*) FROM tipline.dpop_replay")
        await conn.execute(
            "UPDATE tipline.dpop_replay SET expires_at = now() - interval '1 second'"
        )
        await sweep_expired(world.identity, world.app.state.pool)
        after = await conn.fetchval("SELECT count(*) FROM tipline.dpop_replay")
    finally:
        await conn.close()
    assert before > 0
    assert after == 0
