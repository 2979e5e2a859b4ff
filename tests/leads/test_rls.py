"""Row-level security on officers, leads and shares, checked in SQL as the app's own role,
without the HTTP guard: an officer not named on a lead can never see it."""

from __future__ import annotations

import asyncpg
import pytest

from server import db
from tests.leads.conftest import Room

TABLES = (
    "officers",
    "leads",
    "lead_reports",
    "lead_shares",
    "share_acknowledgements",
    "share_accesses",
    "share_access_failures",
    "officer_alerts",
    "lead_outcomes",
)


async def test_every_new_table_has_row_level_security_enabled_and_forced(room: Room) -> None:
    async with room.superuser() as conn:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity, "
            "pg_get_userbyid(relowner) AS owner FROM pg_class "
            "WHERE relnamespace = 'tipline'::regnamespace AND relname = ANY($1)",
            list(TABLES),
        )
    assert {r["relname"] for r in rows} == set(TABLES)
    for row in rows:
        assert row["relrowsecurity"], row["relname"]
        assert row["relforcerowsecurity"], row["relname"]
        assert row["owner"] == "tipline_owner"


async def test_an_officer_sees_only_their_own_open_shares_in_sql(room: Room) -> None:
    named, other = room.officers[0], room.officers[1]
    await room.vet(named)
    await room.vet(other)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, named)
    await room.call(named, "GET", f"/v1/shares/{copy.share_id}")
    pool = room.world.app.state.pool

    async with db.transaction(pool, account_id=other.account_id, role="officer") as conn:
        for table in ("leads", "lead_reports", "lead_shares", "share_accesses", "lead_outcomes"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        assert (
            await conn.fetchval("SELECT count(*) FROM lead_shares WHERE id = $1", copy.share_id)
            == 0
        )
        # Their own vetting row only.
        assert [r[0] for r in await conn.fetch("SELECT account_id FROM officers")] == [
            other.account_id
        ]
    async with db.transaction(pool, account_id=named.account_id, role="officer") as conn:
        assert [r[0] for r in await conn.fetch("SELECT id FROM lead_shares")] == [copy.share_id]
        assert await conn.fetchval("SELECT count(*) FROM leads") == 1
        # The link back to the reports (and so the operatives) stays out of reach.
        assert await conn.fetchval("SELECT count(*) FROM lead_reports") == 0
    async with db.transaction(pool) as conn:
        assert await conn.fetchval("SELECT count(*) FROM lead_shares") == 0
        assert await conn.fetchval("SELECT count(*) FROM officers") == 0

    # Revoked in SQL: the very next statement sees nothing. A backdated revocation (which would
    # hide from the exposure analysis that the officer could read the lead) is stamped "now".
    async with db.transaction(pool, account_id=room.lead.account_id, role="investigator") as conn:
        await conn.execute(
            "UPDATE lead_shares SET revoked_by = $2, revoked_at = now() - interval '30 days' "
            "WHERE id = $1",
            copy.share_id,
            room.lead.account_id,
        )
        assert await conn.fetchval(
            "SELECT revoked_at > now() - interval '1 minute' FROM lead_shares WHERE id = $1",
            copy.share_id,
        )
    async with db.transaction(pool, account_id=named.account_id, role="officer") as conn:
        assert await conn.fetchval("SELECT count(*) FROM lead_shares") == 0
        assert await conn.fetchval("SELECT count(*) FROM leads") == 0


async def test_an_officer_cannot_write_their_way_in(room: Room) -> None:
    named, other = room.officers[0], room.officers[1]
    await room.vet(named)
    await room.vet(other)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, named)
    pool = room.world.app.state.pool
    attempts: list[tuple[str, tuple[object, ...]]] = [
        (
            "INSERT INTO share_accesses (share_id, lead_id, officer_id) VALUES ($1, $2, $3)",
            (copy.share_id, lead_id, other.account_id),
        ),
        (
            "INSERT INTO lead_outcomes (lead_id, officer_id, outcome) VALUES ($1, $2, 'raid_done')",
            (lead_id, other.account_id),
        ),
        (
            "INSERT INTO share_acknowledgements (share_id, officer_id) VALUES ($1, $2)",
            (copy.share_id, other.account_id),
        ),
    ]
    for statement, args in attempts:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction(pool, account_id=other.account_id, role="officer") as conn:
                await conn.execute(statement, *args)
    async with db.transaction(pool, account_id=other.account_id, role="officer") as conn:
        # Re-pointing the share at themselves reaches no row.
        updated = await conn.execute(
            "UPDATE lead_shares SET revoked_at = NULL WHERE id = $1", copy.share_id
        )
        assert updated == "UPDATE 0"
        assert await conn.execute("UPDATE officers SET status = 'active'") == "UPDATE 0"
    # An officer may not approve or widen anything, not even on their own share.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(pool, account_id=named.account_id, role="officer") as conn:
            await conn.execute(
                "UPDATE lead_shares SET expires_at = expires_at + interval '1 day' WHERE id = $1",
                copy.share_id,
            )


async def test_an_admin_sees_no_lead_share_or_vetting_row(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    await room.share(lead_id, officer)
    admin = await room.world.invited(room.lead, "admin")
    pool = room.world.app.state.pool
    async with db.transaction(pool, account_id=admin.account_id, role="admin") as conn:
        for table in ("officers", "leads", "lead_shares", "share_accesses", "lead_outcomes"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO officers (account_id, unit, rank, review_due, proposed_by) "
                "VALUES ($1, 'u', 'r', current_date + 30, $2)",
                officer.account_id,
                admin.account_id,
            )
