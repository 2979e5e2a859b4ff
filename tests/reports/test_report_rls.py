"""Row-level security on reports and threads, checked in SQL as the app's own role."""

from __future__ import annotations

import secrets
import uuid

from clients.reference_client.reports import TipReport, seal_message, seal_report, submit
from server import db
from server.settings import Settings
from tests.actors import Actor
from tests.reports.conftest import Desk


async def report_with_reply(desk: Desk, author: Actor) -> uuid.UUID:
    assert desk.world.directory is not None
    submission = seal_report(author.device, desk.world.directory, TipReport(text="tip"))
    report_id = (await submit(author.client, author.token(), submission)).report_id
    readers = [
        *desk.world.directory.investigator_recipients(),
        str(author.age_identity.to_public()),
    ]
    reply = seal_message(
        desk.investigator.device, readers, desk.world.directory.version, report_id, "reply"
    )
    response = await desk.investigator.client.call(
        "POST", f"/v1/reports/{report_id}/messages", desk.investigator.token(), json=reply
    )
    assert response.status_code == 201
    return report_id


async def test_an_operative_sees_no_report_or_message_of_another_even_in_sql(
    desk: Desk, settings: Settings
) -> None:
    mine = await report_with_reply(desk, desk.operative)
    theirs = await report_with_reply(desk, desk.other_operative)
    pool = desk.world.app.state.pool
    async with db.transaction(pool, account_id=desk.operative.account_id, role="operative") as conn:
        assert [r[0] for r in await conn.fetch("SELECT id FROM reports")] == [mine]
        assert {r[0] for r in await conn.fetch("SELECT report_id FROM report_messages")} == {mine}
        assert await conn.fetchval("SELECT count(*) FROM reports WHERE id = $1", theirs) == 0
        updated = await conn.execute("UPDATE reports SET status = 'verified' WHERE id = $1", mine)
        assert updated == "UPDATE 0"
    async with db.transaction(
        pool, account_id=desk.operative.account_id, role="operative", duress=True
    ) as conn:
        assert await conn.fetchval("SELECT count(*) FROM reports") == 0
        assert await conn.fetchval("SELECT count(*) FROM report_messages") == 0
    async with db.transaction(pool) as conn:
        assert await conn.fetchval("SELECT count(*) FROM reports") == 0
    async with db.transaction(
        pool, account_id=desk.investigator.account_id, role="investigator"
    ) as conn:
        assert await conn.fetchval("SELECT count(*) FROM reports") == 2
        assert await conn.fetchval("SELECT count(*) FROM report_messages") == 2


async def test_a_duress_session_sees_no_past_reports_and_stores_nothing(desk: Desk) -> None:
    operative = desk.operative
    await report_with_reply(desk, operative)
    duress = secrets.token_urlsafe(18)
    response = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": operative.password, "duress_password": duress},
    )
    assert response.status_code == 204
    desk.world.next_step()
    coerced = await operative.client.login(operative.handle, duress, operative.totp())
    listed = await operative.client.call("GET", "/v1/reports", coerced)
    assert listed.json()["reports"] == []
    inbox = await operative.client.call("GET", "/v1/inbox", coerced)
    assert inbox.json()["messages"] == []
    assert desk.world.directory is not None
    fake = seal_report(operative.device, desk.world.directory, TipReport(text="forced"))
    receipt = await submit(operative.client, coerced, fake)
    assert receipt.report_id == fake.report_id
    investigator_view = await desk.investigator.client.call(
        "GET", f"/v1/reports/{fake.report_id}", desk.investigator.token()
    )
    assert investigator_view.status_code == 404
