"""A stored hash made with weaker parameters is upgraded after the next successful login."""

from __future__ import annotations

import argon2
import asyncpg
import pytest

from server.identity import passwords
from tests.actors import World
from tests.conftest import TestDatabase

WEAKER = {
    "owasp-minimum": argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1),
    "argon2i": argon2.PasswordHasher(
        time_cost=3, memory_cost=65536, parallelism=4, type=argon2.Type.I
    ),
}


async def stored_hash(database: TestDatabase, handle: str) -> str:
    conn = await asyncpg.connect(database.admin_url)
    try:
        value: str = await conn.fetchval(
            "SELECT password_hash FROM tipline.accounts WHERE handle = $1", handle
        )
    finally:
        await conn.close()
    return value


@pytest.mark.parametrize("weaker", sorted(WEAKER))
async def test_login_upgrades_a_weaker_hash_and_a_failure_leaves_it(
    world: World, database: TestDatabase, weaker: str
) -> None:
    investigator = await world.first_investigator()
    pepper = world.identity.keyring.password_pepper
    old = WEAKER[weaker].hash(passwords._peppered(pepper, investigator.password))
    conn = await asyncpg.connect(database.admin_url)
    try:
        # As the login service would (the accounts trigger checks who changes what).
        await conn.execute("SELECT set_config('tipline.role', 'authenticator', false)")
        await conn.execute(
            "UPDATE tipline.accounts SET password_hash = $2 WHERE handle = $1",
            investigator.handle,
            old,
        )
    finally:
        await conn.close()

    world.next_step()
    failed = await investigator.client.login_response(
        investigator.handle, "not the password, but long", investigator.totp()
    )
    assert failed.status_code == 401
    assert await stored_hash(database, investigator.handle) == old

    world.next_step()
    await investigator.login()
    upgraded = await stored_hash(database, investigator.handle)
    assert upgraded.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    world.next_step()
    await investigator.login()  # the upgraded hash verifies the same password
