"""Leads from verified reports only; shares narrow (need to know), brief (a window the database
clock enforces), two-person (dual control) and revocable at once; every step audited."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from clients.reference_client import leads
from clients.reference_client.envelope import EnvelopeError, open_sealed, seal
from clients.reference_client.reports import TipReport, seal_report, submit
from server.settings import Settings
from tests.conftest import TestDatabase
from tests.leads.conftest import LEAD_TEXT, Room, open_room, uid

OFFICER_SHARE_KEYS = {
    "id",
    "lead_id",
    "not_before",
    "expires_at",
    "directory_version",
    "ciphertext",
    "ciphertext_sha256",
}


def share_body(room: Room, officer_index: int, **times: datetime) -> dict[str, object]:
    now = datetime.now(UTC)
    body, _, _ = leads.seal_share(
        room.directory,
        uid(room.officers[officer_index]),
        LEAD_TEXT,
        not_before=times.get("not_before", now - timedelta(minutes=1)),
        expires_at=times.get("expires_at", now + timedelta(hours=1)),
    )
    return body


async def test_a_lead_is_built_from_verified_reports_only(room: Room) -> None:
    verified = await room.verified_report()
    fresh = seal_report(room.operative.device, room.directory, TipReport(text="unchecked"))
    unverified = (await submit(room.operative.client, room.operative.token(), fresh)).report_id
    for report_ids in ([unverified], [verified, unverified], [uuid.uuid4()]):
        body = leads.seal_lead(room.directory, "text", report_ids)
        response = await room.call(room.lead, "POST", "/v1/leads", body)
        assert response.status_code == 409, report_ids
        assert response.json()["type"].endswith(":unverified-report")
    body = leads.seal_lead(room.directory, "text", [verified])
    created = await room.call(room.lead, "POST", "/v1/leads", body)
    assert created.status_code == 201
    assert created.json()["status"] == "open"
    actions = await room.audit_actions()
    assert actions.count("lead.refused") == 3
    assert actions.count("lead.created") == 1
    # Not even the table would take an unverified report.
    async with room.superuser() as conn:
        with pytest.raises(Exception, match="verified reports only"):
            await conn.execute(
                "INSERT INTO lead_reports VALUES ($1, $2)",
                uuid.UUID(created.json()["id"]),
                unverified,
            )


async def test_what_an_officer_receives_names_no_report_or_operative(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer)
    response = await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")
    assert set(response.json()) == OFFICER_SHARE_KEYS
    (assignment,) = (await room.call(officer, "GET", "/v1/assignments")).json()["assignments"]
    assert set(assignment) == {"share_id", "lead_id", "not_before", "expires_at", "acknowledged"}
    async with room.superuser() as conn:
        columns = {
            r[0]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'tipline' AND table_name IN ('leads', 'lead_shares')"
            )
        }
    assert not {c for c in columns if "operative" in c or "report" in c}


async def test_window_officer_and_need_to_know_checks(room: Room) -> None:
    for officer in room.officers:
        await room.vet(officer)
    lead_id = await room.new_lead()
    now = datetime.now(UTC)
    path = f"/v1/leads/{lead_id}/shares"

    inverted = share_body(room, 0, not_before=now + timedelta(hours=2), expires_at=now)
    too_long = share_body(room, 0, expires_at=now + timedelta(days=8))
    for body in (inverted, too_long):
        response = await room.call(room.lead, "POST", path, body)
        assert response.status_code == 422
        assert response.json()["type"].endswith(":invalid-window")

    # An officer who is not vetted (proposed only) is refused.
    outsider = await room.world.invited(room.lead, "officer")
    response = await room.call(
        room.lead,
        "POST",
        "/v1/officers",
        {
            "account_id": str(outsider.account_id),
            "unit": "u",
            "rank": "r",
            "review_due": (now + timedelta(days=30)).date().isoformat(),
        },
    )
    assert response.status_code == 201
    body = share_body(room, 0)
    body["officer_id"] = str(outsider.account_id)
    response = await room.call(room.lead, "POST", path, body)
    assert response.status_code == 409
    assert response.json()["type"].endswith(":officer-not-cleared")

    # Need to know: three officers may hold the lead, a fourth may not; a second share to one
    # who already holds it is fine.
    for index in range(3):
        assert (
            await room.call(room.lead, "POST", path, share_body(room, index))
        ).status_code == 201
    response = await room.call(room.lead, "POST", path, share_body(room, 3))
    assert response.status_code == 409
    assert response.json()["type"].endswith(":need-to-know")
    assert (await room.call(room.lead, "POST", path, share_body(room, 0))).status_code == 201
    # Revoking an unopened share frees its place; an opened one keeps counting.
    shares = await leads.lead_shares(room.lead.client, room.lead.token(), lead_id)
    by_officer = {s.officer_id: s for s in shares}
    second = by_officer[uid(room.officers[1])]
    await leads.revoke_share(room.lead.client, room.lead.token(), second.id)
    assert (await room.call(room.lead, "POST", path, share_body(room, 3))).status_code == 201
    assert (await room.call(room.lead, "POST", path, share_body(room, 1))).status_code == 409
    assert (await room.audit_actions()).count("share.refused") == 5


async def test_dual_control_a_pending_share_is_invisible_until_a_second_approval(
    room: Room,
) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer, approve=False)
    (info,) = await leads.lead_shares(room.lead.client, room.lead.token(), lead_id)
    assert (info.state, info.readable_now) == ("pending", False)
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 404

    mine = await room.call(room.lead, "POST", f"/v1/shares/{copy.share_id}/approve")
    assert mine.status_code == 403
    assert mine.json()["type"].endswith(":two-person-rule")
    approved = await leads.approve_share(room.second.client, room.second.token(), copy.share_id)
    assert (approved.state, approved.approved_by) == ("open", room.second.account_id)
    assert [a.share_id for a in await leads.assignments(officer.client, officer.token())] == [
        copy.share_id
    ]
    async with room.superuser() as conn:
        event = await conn.fetchrow(
            "SELECT kind, subject_id, report_id, audience_account FROM events "
            "WHERE kind = 'share.available'"
        )
    assert tuple(event) == ("share.available", copy.share_id, lead_id, officer.account_id)


async def test_without_dual_control_a_share_opens_at_once(
    settings: Settings, database: TestDatabase
) -> None:
    async with open_room(settings, database, officers=1, share_dual_control=False) as room:
        officer = room.officers[0]
        await room.vet(officer)
        lead_id = await room.new_lead()
        copy = await room.share(lead_id, officer, approve=False)
        assert [a.share_id for a in await leads.assignments(officer.client, officer.token())] == [
            copy.share_id
        ]


async def test_the_window_is_enforced_by_the_database_clock(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    later = await room.share(lead_id, officer, not_before=datetime.now(UTC) + timedelta(hours=1))
    # Before not_before: not listed, not readable, and the attempt is audited.
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(officer, "GET", f"/v1/shares/{later.share_id}")).status_code == 404
    assert "share.access_refused" in await room.audit_actions()

    async with room.superuser() as conn:
        # Moved into the window by the database's own clock...
        await conn.execute(
            "UPDATE lead_shares SET not_before = now() - interval '1 minute' WHERE id = $1",
            later.share_id,
        )
    assert len(await leads.assignments(officer.client, officer.token())) == 1
    assert (await room.call(officer, "GET", f"/v1/shares/{later.share_id}")).status_code == 200
    async with room.superuser() as conn:
        # ... and past expires_at.
        await conn.execute(
            "UPDATE lead_shares SET not_before = now() - interval '2 hours', "
            "expires_at = now() - interval '1 second' WHERE id = $1",
            later.share_id,
        )
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(officer, "GET", f"/v1/shares/{later.share_id}")).status_code == 404


async def test_revocation_acts_on_the_next_request(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer)
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 200
    response = await room.call(room.lead, "DELETE", f"/v1/shares/{copy.share_id}")
    assert response.status_code == 204
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 404
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(room.lead, "DELETE", f"/v1/shares/{copy.share_id}")).status_code == 204
    assert (await room.audit_actions()).count("share.revoked") == 1


async def test_reading_is_logged_and_only_the_named_officer_can_decrypt(room: Room) -> None:
    named, other = room.officers[0], room.officers[1]
    await room.vet(named)
    await room.vet(other)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, named)
    text = await leads.open_share(
        named.client, named.token(), copy.share_id, str(named.age_identity)
    )
    assert text == copy.text
    # The other officer cannot fetch it, and could not decrypt it if they had it.
    assert (await room.call(other, "GET", f"/v1/shares/{copy.share_id}")).status_code == 404
    raw = await room.call(named, "GET", f"/v1/shares/{copy.share_id}")
    content = leads.ShareContent(
        id=copy.share_id,
        lead_id=lead_id,
        not_before=datetime.now(UTC),
        expires_at=datetime.now(UTC),
        directory_version=1,
        ciphertext=base64.b64decode(raw.json()["ciphertext"]),
        ciphertext_sha256=raw.json()["ciphertext_sha256"],
    )
    with pytest.raises(EnvelopeError):
        leads.open_share_text(content, str(other.age_identity))

    log = await leads.access_log(room.lead.client, room.lead.token(), lead_id)
    assert [(e["share_id"], e["officer_id"], e["handle"]) for e in log] == [
        (str(copy.share_id), str(named.account_id), named.handle)
    ] * 2
    assert (await room.audit_actions()).count("share.read") == 2
    assert (await room.call(other, "GET", f"/v1/leads/{lead_id}/access-log")).status_code == 403


async def test_ack_and_outcome_move_the_lead_along(room: Room) -> None:
    officer, bystander = room.officers[0], room.officers[1]
    await room.vet(officer)
    await room.vet(bystander)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer)
    assert (await room.call(officer, "POST", f"/v1/shares/{copy.share_id}/ack")).status_code == 204
    (assignment,) = await leads.assignments(officer.client, officer.token())
    assert assignment.acknowledged

    # Someone not on the lead cannot report on it.
    response = await room.call(
        bystander, "POST", f"/v1/leads/{lead_id}/outcome", {"outcome": "raid_done"}
    )
    assert response.status_code == 404
    outcome = await leads.report_outcome(
        officer.client,
        officer.token(),
        room.directory,
        lead_id,
        "raid_done",
        arrests=3,
        victims_safe=5,
        note="two girls referred to the shelter",
    )
    assert (outcome["arrests"], outcome["victims_safe"]) == (3, 5)
    detail = (await room.call(room.lead, "GET", f"/v1/leads/{lead_id}")).json()
    assert detail["status"] == "actioned"
    note = base64.b64decode(detail["outcomes"][0]["note_ciphertext"])
    assert open_sealed(note, str(room.second.age_identity)) == b"two girls referred to the shelter"
    actions = await room.audit_actions()
    assert {"share.acknowledged", "lead.outcome_recorded"} <= set(actions)

    # Closing the lead revokes what is still open.
    assert (await room.call(room.lead, "POST", f"/v1/leads/{lead_id}/close")).status_code == 204
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(room.lead, "GET", f"/v1/leads/{lead_id}")).json()["status"] == "closed"


async def test_a_share_must_be_sealed_to_its_officer_alone(room: Room) -> None:
    named, other = room.officers[0], room.officers[1]
    await room.vet(named)
    await room.vet(other)
    lead_id = await room.new_lead()
    body = share_body(room, 0)
    both = [
        leads.officer_recipient(room.directory, uid(named)),
        leads.officer_recipient(room.directory, uid(other)),
    ]
    body["ciphertext"] = base64.b64encode(seal(b"lead text", both)).decode("ascii")
    response = await room.call(room.lead, "POST", f"/v1/leads/{lead_id}/shares", body)
    assert response.status_code == 422
    assert "exactly its readers" in response.json()["detail"]
    # An officer vetted after the directory was signed is not a recipient anyone can trust yet.
    newcomer = await room.world.invited(room.lead, "officer")
    await room.vet(newcomer)
    body = share_body(room, 0)
    body["officer_id"] = str(newcomer.account_id)
    response = await room.call(room.lead, "POST", f"/v1/leads/{lead_id}/shares", body)
    assert response.status_code == 409
    assert response.json()["type"].endswith(":officer-not-cleared")


async def test_a_share_whose_audit_line_fails_is_not_stored(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    async with room.superuser() as conn:
        await conn.execute(
            "CREATE FUNCTION fail_share_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN IF NEW.action = 'share.created' THEN RAISE EXCEPTION 'audit down'; END IF; "
            "RETURN NEW; END $$"
        )
        await conn.execute(
            "CREATE TRIGGER fail_share_audit BEFORE INSERT ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION fail_share_audit()"
        )
    response = await room.call(
        room.lead, "POST", f"/v1/leads/{lead_id}/shares", share_body(room, 0)
    )
    assert response.status_code == 500
    async with room.superuser() as conn:
        assert await conn.fetchval("SELECT count(*) FROM lead_shares") == 0
        assert await conn.fetchval("SELECT status FROM leads WHERE id = $1", lead_id) == "open"
