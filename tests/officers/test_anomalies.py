"""Access anomalies raise an alert (audit event + flag on the officer). History is written
with controlled timestamps straight into the database; nothing here sleeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from clients.reference_client import leads
from server import db
from server.settings import Settings
from tests.conftest import TestDatabase
from tests.leads.conftest import Room, open_room, uid


@pytest.fixture
async def watched(settings: Settings, database: TestDatabase) -> AsyncIterator[Room]:
    async with open_room(
        settings,
        database,
        officers=1,
        anomaly_burst_opens=3,
        anomaly_failed_checks=3,
        anomaly_hour_min_history=5,
    ) as room:
        await room.vet(room.officers[0])
        yield room


async def alert_kinds(room: Room) -> list[str]:
    (officer,) = await leads.list_officers(room.lead.client, room.lead.token())
    return sorted(a["kind"] for a in officer.alerts)


async def flagged(room: Room) -> int:
    return (await room.audit_actions()).count("officer.flagged")


async def test_many_opens_in_a_short_time_raise_one_alert(watched: Room) -> None:
    officer = watched.officers[0]
    copy = await watched.share(await watched.new_lead(), officer)
    for _ in range(2):
        assert (
            await watched.call(officer, "GET", f"/v1/shares/{copy.share_id}")
        ).status_code == 200
    assert await alert_kinds(watched) == []
    for _ in range(2):
        assert (
            await watched.call(officer, "GET", f"/v1/shares/{copy.share_id}")
        ).status_code == 200
    assert await alert_kinds(watched) == ["burst"]
    assert await flagged(watched) == 1  # raised once per window, not on every further open
    # A leaking officer must not learn they are flagged: their own context sees no alert.
    pool = watched.world.app.state.pool
    async with db.transaction(pool, account_id=uid(officer), role="officer") as conn:
        assert await conn.fetchval("SELECT count(*) FROM officer_alerts") == 0
    async with db.transaction(pool, account_id=uid(watched.lead), role="investigator") as conn:
        assert await conn.fetchval("SELECT count(*) FROM officer_alerts") == 1


async def test_repeated_refused_checks_raise_an_alert(watched: Room) -> None:
    officer = watched.officers[0]
    for _ in range(2):
        assert (await watched.call(officer, "GET", f"/v1/shares/{uuid.uuid4()}")).status_code == 404
    assert await alert_kinds(watched) == []
    assert (
        await watched.call(officer, "POST", f"/v1/shares/{uuid.uuid4()}/ack")
    ).status_code == 404
    assert await alert_kinds(watched) == ["failed_checks"]
    assert await flagged(watched) == 1
    assert (await watched.audit_actions()).count("share.access_refused") == 3


async def seed_history(room: Room, share: leads.SharedCopy, hours_off: int) -> None:
    async with room.superuser() as conn:
        for day in range(1, 7):
            await conn.execute(
                "INSERT INTO share_accesses (share_id, lead_id, officer_id, accessed_at) "
                "VALUES ($1, $2, $3, "
                "        now() - make_interval(days => $4) + make_interval(hours => $5))",
                share.share_id,
                share.lead_id,
                uid(room.officers[0]),
                day,
                hours_off,
            )


async def test_an_open_at_an_hour_unusual_for_that_officer_raises_an_alert(watched: Room) -> None:
    officer = watched.officers[0]
    copy = await watched.share(await watched.new_lead(), officer)
    await seed_history(watched, copy, hours_off=12)  # always opened at the opposite time of day
    assert (await watched.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 200
    assert await alert_kinds(watched) == ["unusual_hour"]
    assert await flagged(watched) == 1


async def test_an_open_at_the_officers_usual_hour_raises_nothing(watched: Room) -> None:
    officer = watched.officers[0]
    copy = await watched.share(await watched.new_lead(), officer)
    await seed_history(watched, copy, hours_off=0)
    assert (await watched.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 200
    assert await alert_kinds(watched) == []
    assert await flagged(watched) == 0
