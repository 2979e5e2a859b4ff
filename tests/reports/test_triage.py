"""The queue and triage: investigators see everything and move reports through a fixed
workflow; operatives see only their own reports' statuses; every change is audited."""

from __future__ import annotations

import asyncpg
import httpx
import msgspec
import pytest

from clients.reference_client.reports import TipReport, seal_report, submit
from server.reports.schemas import Status
from server.reports.service import TRANSITIONS
from tests.actors import Actor
from tests.conftest import TestDatabase
from tests.reports.conftest import Desk


async def file_report(desk: Desk, author: Actor, text: str = "a report") -> str:
    assert desk.world.directory is not None
    submission = seal_report(author.device, desk.world.directory, TipReport(text=text))
    receipt = await submit(author.client, author.token(), submission)
    return str(receipt.report_id)


async def move(desk: Desk, report_id: str, **change: object) -> int:
    response = await desk.investigator.client.call(
        "PATCH", f"/v1/reports/{report_id}", desk.investigator.token(), json=change
    )
    return response.status_code


PATHS = {
    Status.NEW: [],
    Status.IN_REVIEW: [Status.IN_REVIEW],
    Status.NEEDS_INFO: [Status.IN_REVIEW, Status.NEEDS_INFO],
    Status.VERIFIED: [Status.IN_REVIEW, Status.VERIFIED],
    Status.REJECTED: [Status.IN_REVIEW, Status.REJECTED],
    Status.DUPLICATE: [Status.IN_REVIEW, Status.DUPLICATE],
}


@pytest.mark.parametrize("start", list(Status))
async def test_every_transition_is_allowed_or_refused_as_specified(
    desk: Desk, start: Status
) -> None:
    for target in Status:
        report_id = await file_report(desk, desk.operative)
        for step in PATHS[start]:
            assert await move(desk, report_id, status=step) == 200
        expected = 200 if target in TRANSITIONS[start] else 409
        assert await move(desk, report_id, status=target) == expected, f"{start} -> {target}"


async def test_triage_is_audited_and_priority_is_kept(desk: Desk, database: TestDatabase) -> None:
    report_id = await file_report(desk, desk.operative)
    assert await move(desk, report_id, priority=3) == 200
    assert await move(desk, report_id, status="in_review") == 200
    detail = await desk.investigator.client.call(
        "GET", f"/v1/reports/{report_id}", desk.investigator.token()
    )
    assert (detail.json()["status"], detail.json()["priority"]) == ("in_review", 3)
    assert await move(desk, report_id) == 422
    assert await move(desk, report_id, priority=9) == 422
    conn = await asyncpg.connect(database.admin_url)
    try:
        changes = await conn.fetch(
            "SELECT detail FROM tipline.audit_events WHERE action = 'report.status_changed'"
            " AND subject_id = $1 ORDER BY id",
            report_id,
        )
    finally:
        await conn.close()
    assert [msgspec.json.decode(c[0])["to"] for c in changes] == ["new", "in_review"]


async def test_operatives_see_only_their_own_reports_and_only_their_status(desk: Desk) -> None:
    mine = await file_report(desk, desk.operative)
    theirs = await file_report(desk, desk.other_operative)
    own = await desk.operative.client.call("GET", "/v1/reports", desk.operative.token())
    assert own.status_code == 200
    listed = own.json()["reports"]
    assert [r["id"] for r in listed] == [mine]
    assert set(listed[0]) == {"id", "status", "received_on"}
    detail = await desk.operative.client.call("GET", f"/v1/reports/{mine}", desk.operative.token())
    assert set(detail.json()) == {"id", "status", "received_on"}
    other = await desk.operative.client.call("GET", f"/v1/reports/{theirs}", desk.operative.token())
    assert other.status_code == 404
    triage = await desk.operative.client.call(
        "PATCH", f"/v1/reports/{mine}", desk.operative.token(), json={"status": "verified"}
    )
    assert triage.status_code == 403


async def test_the_queue_filters_and_pages_without_gaps_or_repeats(desk: Desk) -> None:
    ids = [await file_report(desk, desk.operative, f"report {i}") for i in range(5)]
    other = await file_report(desk, desk.other_operative)
    await move(desk, ids[0], status="in_review")
    seen: list[str] = []
    cursor = None
    while True:
        path = "/v1/reports?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await desk.investigator.client.call("GET", path, desk.investigator.token())).json()
        seen += [r["id"] for r in page["reports"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([*ids, other])
    assert len(seen) == len(set(seen))

    async def listed(query: str) -> httpx.Response:
        return await desk.investigator.client.call(
            "GET", f"/v1/reports?{query}", desk.investigator.token()
        )

    in_review = (await listed("status=in_review")).json()["reports"]
    assert [r["id"] for r in in_review] == [ids[0]]
    by_operative = (await listed(f"operative_id={desk.other_operative.account_id}")).json()
    assert [r["id"] for r in by_operative["reports"]] == [other]
    assert (await listed("cursor=not-a-cursor")).status_code == 422
    assert (await listed("limit=1000")).status_code in {400, 422}


async def test_officers_and_admins_cannot_reach_reports(desk: Desk) -> None:
    officer = await desk.world.invited(desk.investigator, "officer")
    admin = await desk.world.invited(desk.investigator, "admin")
    report_id = await file_report(desk, desk.operative)
    for person in (officer, admin):
        for method, path in (("GET", "/v1/reports"), ("GET", f"/v1/reports/{report_id}")):
            response = await person.client.call(method, path, person.token())
            assert response.status_code == 403
