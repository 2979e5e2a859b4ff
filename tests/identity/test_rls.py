"""Authorization twice: even with no HTTP guard at all, a query run as one account returns no
row of another. These tests talk to PostgreSQL as the app's own login role."""

from __future__ import annotations

import asyncpg
import msgspec
import pytest

from server import db
from server.settings import Settings
from tests.actors import World
from tests.conftest import TestDatabase

PER_ACCOUNT_TABLES = ("accounts", "devices", "sessions")
ALL_TABLES_EXEMPT = {"schema_migrations"}  # no per-account data; read-only to the app


async def test_every_table_forces_row_level_security(database: TestDatabase) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'tipline' AND c.relkind = 'r'"
        )
    finally:
        await conn.close()
    unprotected = [
        r["relname"]
        for r in rows
        if r["relname"] not in ALL_TABLES_EXEMPT
        and not (r["relrowsecurity"] and r["relforcerowsecurity"])
    ]
    assert len(rows) > len(ALL_TABLES_EXEMPT)
    assert unprotected == []


async def test_a_query_as_one_account_sees_no_row_of_another(
    world: World, settings: Settings
) -> None:
    investigator = await world.first_investigator()
    alice = await world.invited(investigator, "operative")
    bob = await world.invited(investigator, "operative")
    assert settings.database_url is not None
    pool = await db.create_pool(settings, settings.database_url)
    try:
        async with db.transaction(pool) as conn:
            for table in (*PER_ACCOUNT_TABLES, "invites", "audit_events", "login_throttle"):
                assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table

        async with db.transaction(pool, account_id=alice.account_id, role="operative") as conn:
            for table in PER_ACCOUNT_TABLES:
                owners = {
                    r[0]
                    for r in await conn.fetch(
                        f"SELECT {'id' if table == 'accounts' else 'account_id'} FROM {table}"
                    )
                }
                assert owners == {alice.account_id}, table
            # Not even a targeted query or update reaches Bob's rows.
            assert (
                await conn.fetchval("SELECT count(*) FROM accounts WHERE id = $1", bob.account_id)
                == 0
            )
            updated = await conn.execute(
                "UPDATE sessions SET ended_at = now() WHERE account_id = $1", bob.account_id
            )
            assert updated == "UPDATE 0"
            assert await conn.fetchval("SELECT count(*) FROM audit_events") == 0

        async with db.transaction(
            pool, account_id=investigator.account_id, role="investigator"
        ) as conn:
            seen = await conn.fetchval("SELECT count(*) FROM accounts")
            assert seen == 3
            assert await conn.fetchval("SELECT count(*) FROM sessions") == 1
    finally:
        await pool.close()
    assert (await bob.client.call("GET", "/v1/me", bob.token())).status_code == 200


async def test_the_context_does_not_outlive_its_transaction(
    settings: Settings, world: World
) -> None:
    investigator = await world.first_investigator()
    assert settings.database_url is not None
    one = msgspec_replace(settings)
    pool = await db.create_pool(one, settings.database_url)
    try:
        async with db.transaction(
            pool, account_id=investigator.account_id, role="investigator"
        ) as conn:
            assert await conn.fetchval("SELECT count(*) FROM accounts") == 1
        # The same (only) connection, next request, no context: nothing.
        async with db.transaction(pool) as conn:
            assert await conn.fetchval("SELECT count(*) FROM accounts") == 0
        async with pool.acquire() as conn:
            # set_config outside a transaction block in autocommit does not leak either.
            await conn.execute("SELECT set_config('tipline.role', 'investigator', true)")
            assert await conn.fetchval("SELECT count(*) FROM accounts") == 0
    finally:
        await pool.close()


def msgspec_replace(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, db_pool_min_size=1, db_pool_max_size=1)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE tipline.audit_events SET action = 'login.succeeded'",
        "DELETE FROM tipline.audit_events",
        "TRUNCATE tipline.audit_events",
        "DELETE FROM tipline.accounts",
        "ALTER TABLE tipline.accounts ADD COLUMN x int",
        "SET ROLE tipline_owner",
    ],
)
async def test_the_app_role_cannot_rewrite_history_or_escalate(
    database: TestDatabase, statement: str
) -> None:
    conn = await asyncpg.connect(database.app_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(statement)
    finally:
        await conn.close()
