"""Throttles live in PostgreSQL, keyed so an unknown handle behaves exactly like a real one."""

from __future__ import annotations

import asyncio

import asyncpg

from server.settings import Settings
from tests.conftest import TestDatabase, world_with


async def test_back_off_answers_429_with_retry_after_for_known_and_unknown_handles(
    settings: Settings,
) -> None:
    async with world_with(
        settings, login_backoff_after=3, login_backoff_base_s=30.0, login_hard_lock_after=50
    ) as world:
        investigator = await world.first_investigator()
        for handle in (investigator.handle, "nobody-at-all"):
            client = investigator.client
            codes = [
                (await client.login_response(handle, "wrong password, long enough", "000000"))
                for _ in range(4)
            ]
            assert [r.status_code for r in codes] == [401, 401, 401, 429]
            assert 1 <= int(codes[-1].headers["retry-after"]) <= 30
            assert codes[-1].headers["content-type"] == "application/problem+json"
        # Even the right credentials wait out the back-off.
        world.next_step()
        blocked = await investigator.client.login_response(
            investigator.handle, investigator.password, investigator.totp()
        )
        assert blocked.status_code == 429


async def test_hard_lock_refuses_the_right_password_until_an_admin_unlocks(
    settings: Settings, database: TestDatabase
) -> None:
    async with world_with(settings, login_backoff_after=100, login_hard_lock_after=4) as world:
        investigator = await world.first_investigator()
        admin = await world.invited(investigator, "admin")
        operative = await world.invited(investigator, "operative")
        for _ in range(4):
            response = await operative.client.login_response(
                operative.handle, "wrong password, long enough", "000000"
            )
            assert response.status_code == 401
        world.next_step()
        locked = await operative.client.login_response(
            operative.handle, operative.password, operative.totp()
        )
        assert locked.status_code == 401

        # Investigators are alerted: the account carries the flag and the audit log says so.
        listing = await investigator.client.call("GET", "/v1/accounts", investigator.token())
        flagged = {a["handle"]: a["locked_at"] for a in listing.json()["accounts"]}
        assert flagged[operative.handle] is not None
        conn = await asyncpg.connect(database.admin_url)
        try:
            locks = await conn.fetchval(
                "SELECT count(*) FROM tipline.audit_events WHERE action = 'account.locked'"
            )
        finally:
            await conn.close()
        assert locks == 1

        # An investigator cannot lift it; an admin can.
        path = f"/v1/accounts/{operative.account_id}/unlock"
        assert (
            await investigator.client.call("POST", path, investigator.token())
        ).status_code == 403
        assert (await admin.client.call("POST", path, admin.token())).status_code == 204
        world.next_step()
        unlocked = await operative.client.login_response(
            operative.handle, operative.password, operative.totp()
        )
        assert unlocked.status_code == 201


async def test_per_source_limit_spans_handles(settings: Settings) -> None:
    # Windows are fixed; a day-long one keeps a boundary from falling inside the test.
    async with world_with(settings, source_attempts_per_window=5, source_window_s=86_400) as world:
        investigator = await world.first_investigator()  # enrolment and login: 3 attempts
        statuses = await asyncio.gather(
            *(
                investigator.client.login_response(f"handle-{i}", "wrong password, long", "000000")
                for i in range(4)
            )
        )
        codes = sorted(r.status_code for r in statuses)
        assert codes == [401, 401, 429, 429]
        limited = next(r for r in statuses if r.status_code == 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 86_400
