"""Two-person vetting, and suspension, revocation and lapse that act at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from clients.reference_client import leads
from clients.reference_client.api import ApiError
from server import db
from tests.leads.conftest import Room, uid


def due(days: int = 90) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


async def propose(room: Room, officer_index: int = 0, days: int = 90) -> int:
    officer = room.officers[officer_index]
    response = await room.call(
        room.lead,
        "POST",
        "/v1/officers",
        {
            "account_id": str(officer.account_id),
            "unit": "AHTJP",
            "rank": "Major",
            "review_due": due(days),
        },
    )
    return response.status_code


async def test_the_proposer_cannot_approve_a_second_investigator_can(room: Room) -> None:
    officer = room.officers[0]
    assert await propose(room) == 201
    mine = await room.call(room.lead, "POST", f"/v1/officers/{officer.account_id}/approve")
    assert mine.status_code == 403
    assert mine.json()["type"].endswith(":two-person-rule")
    listed = await leads.list_officers(room.lead.client, room.lead.token())
    assert [(o.status, o.cleared) for o in listed] == [("proposed", False)]

    approved = await leads.approve_officer(room.second.client, room.second.token(), uid(officer))
    assert (approved.status, approved.cleared) == ("active", True)
    assert approved.proposed_by == room.lead.account_id
    assert approved.approved_by == room.second.account_id
    actions = await room.audit_actions()
    assert actions.count("officer.proposed") == 1
    assert actions.count("officer.vetting_refused") == 1
    assert actions.count("officer.approved") == 1


async def test_the_table_itself_refuses_self_approval(room: Room) -> None:
    assert await propose(room) == 201
    pool = room.world.app.state.pool
    # The proposer, in their own name, straight at the table: the CHECK holds the line.
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.transaction(
            pool, account_id=room.lead.account_id, role="investigator"
        ) as conn:
            await conn.execute(
                "UPDATE officers SET status = 'active', approved_by = $1, approved_at = now()",
                room.lead.account_id,
            )
    # Nor can anyone approve in someone else's name.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(
            pool, account_id=room.lead.account_id, role="investigator"
        ) as conn:
            await conn.execute(
                "UPDATE officers SET status = 'active', approved_by = $1, approved_at = now()",
                room.second.account_id,
            )


async def test_an_admin_can_neither_propose_nor_approve(room: Room) -> None:
    admin = await room.world.invited(room.lead, "admin")
    officer = room.officers[0]
    body = {"account_id": str(officer.account_id), "unit": "u", "rank": "r", "review_due": due()}
    assert (await room.call(admin, "POST", "/v1/officers", body)).status_code == 403
    assert await propose(room) == 201
    response = await room.call(admin, "POST", f"/v1/officers/{officer.account_id}/approve")
    assert response.status_code == 403
    listed = await leads.list_officers(room.lead.client, room.lead.token())
    assert listed[0].status == "proposed"


async def test_only_an_active_officer_account_with_a_sane_review_date_is_proposed(
    room: Room,
) -> None:
    body = {
        "account_id": str(room.operative.account_id),
        "unit": "u",
        "rank": "r",
        "review_due": due(),
    }
    assert (await room.call(room.lead, "POST", "/v1/officers", body)).status_code == 409
    assert await propose(room, days=0) == 422
    assert await propose(room, days=5000) == 422
    assert await propose(room) == 201
    assert await propose(room) == 409  # already pending


async def test_suspension_ends_sessions_and_shares_at_once(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer)
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 200

    response = await room.call(room.lead, "POST", f"/v1/officers/{officer.account_id}/suspend")
    assert response.status_code == 204
    assert (await room.call(officer, "GET", "/v1/me")).status_code == 401
    # A fresh login gets nothing: neither the share nor its listing.
    room.world.next_step()
    await officer.login()
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 404
    assert await leads.assignments(officer.client, officer.token()) == []
    listed = await leads.list_officers(room.lead.client, room.lead.token())
    assert (listed[0].status, listed[0].cleared, listed[0].readable) == ("suspended", False, [])
    actions = await room.audit_actions()
    assert "officer.suspended" in actions
    assert "share.access_refused" in actions


async def test_past_the_review_date_an_officer_reads_nothing_until_renewed(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    copy = await room.share(lead_id, officer)
    assert len(await leads.assignments(officer.client, officer.token())) == 1
    (before,) = await leads.list_officers(room.lead.client, room.lead.token())
    assert [r["share_id"] for r in before.readable] == [str(copy.share_id)]

    async with room.superuser() as conn:
        await conn.execute("UPDATE officers SET review_due = current_date")
    assert await leads.assignments(officer.client, officer.token()) == []
    assert (await room.call(officer, "GET", f"/v1/shares/{copy.share_id}")).status_code == 404
    listed = await leads.list_officers(room.lead.client, room.lead.token())
    assert (listed[0].status, listed[0].review_overdue, listed[0].cleared) == (
        "active",
        True,
        False,
    )
    # Renewal is a new proposal and a second investigator's approval.
    assert await propose(room) == 201
    assert await leads.assignments(officer.client, officer.token()) == []
    await leads.approve_officer(room.second.client, room.second.token(), uid(officer))
    assert len(await leads.assignments(officer.client, officer.token())) == 1


async def test_revocation_is_final(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    await leads.revoke_officer(room.lead.client, room.lead.token(), uid(officer))
    assert (await room.call(officer, "GET", "/v1/me")).status_code == 401
    assert await propose(room) == 409
    with pytest.raises(ApiError):
        await leads.suspend_officer(room.lead.client, room.lead.token(), uid(officer))
    assert "officer.revoked" in await room.audit_actions()


async def test_no_one_switches_a_suspended_or_lapsed_officer_back_on_in_sql(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    pool = room.world.app.state.pool

    async def refused(statement: str) -> None:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction(
                pool, account_id=room.second.account_id, role="investigator"
            ) as conn:
                await conn.execute(statement)

    # Extending an active officer's review date is a new proposal's job, not a quiet edit.
    await refused("UPDATE officers SET review_due = review_due + 365")
    await leads.suspend_officer(room.lead.client, room.lead.token(), uid(officer))
    # The approver cannot simply reactivate: that needs a new proposal and another approval.
    await refused("UPDATE officers SET status = 'active'")
    await refused(
        "UPDATE officers SET status = 'active', approved_by = current_account_id(), "
        "approved_at = now()"
    )
    (listed,) = await leads.list_officers(room.lead.client, room.lead.token())
    assert listed.status == "suspended"
