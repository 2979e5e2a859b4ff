"""End to end through the reference client library: an investigator shares a lead with three
officers, one opens and decrypts it, and a leaked copy (whole, or one paragraph) names them."""

from __future__ import annotations

import uuid

import pytest

from clients.reference_client import leads
from tests.leads.conftest import LEAD_TEXT, Room, uid


async def test_share_open_and_trace_a_leak_back_to_its_officer(room: Room) -> None:
    team = room.officers[:3]
    for officer in team:
        await room.vet(officer)
    lead_id = await room.new_lead()
    copies: list[leads.SharedCopy] = []
    for officer in team:
        copies.append(await room.share(lead_id, officer, others=copies))

    listed = await leads.lead_shares(room.lead.client, room.lead.token(), lead_id)
    # The server holds each code's digest, never the code.
    assert {s.trace_digest for s in listed} == {leads.trace_digest(c.trace_code) for c in copies}
    assert all(s.state == "open" for s in listed)

    leaker, copy = team[1], copies[1]
    (assignment,) = await leads.assignments(leaker.client, leaker.token())
    assert assignment.share_id == copy.share_id
    text = await leads.open_share(
        leaker.client, leaker.token(), copy.share_id, str(leaker.age_identity)
    )
    assert text == copy.text
    assert copy.trace_code in text
    await leads.acknowledge(leaker.client, leaker.token(), copy.share_id)

    # The whole text, with the code: found by the code.
    whole = leads.trace(text, copies)
    assert (whole.share_id, whole.officer_id, whole.method) == (
        copy.share_id,
        uid(leaker),
        "code",
    )
    # One paragraph, retyped without the code: found by the wording alone.
    for paragraph in leads.paragraphs(text)[:2]:
        assert copy.trace_code not in paragraph
        found = leads.trace(paragraph, copies)
        assert (found.share_id, found.officer_id, found.method) == (
            copy.share_id,
            uid(leaker),
            "wording",
        )
    # The desk's records survive a round trip sealed to the investigator's own key.
    sealed = leads.seal_records(copies, str(room.lead.age_identity.to_public()))
    assert leads.open_records(sealed, str(room.lead.age_identity)) == copies


def test_wording_is_a_function_of_the_code() -> None:
    code = leads.new_trace_code()
    assert leads.render_share_text(LEAD_TEXT, code) == leads.render_share_text(LEAD_TEXT, code)
    others = {leads.vary_wording(LEAD_TEXT, leads.new_trace_code()) for _ in range(8)}
    assert len(others) > 1
    assert leads.trace_digest(code) == leads.trace_digest(code.lower().upper())


def test_trace_refuses_to_guess() -> None:
    copies = [
        leads.SharedCopy(
            share_id=uuid.uuid4(),
            lead_id=uuid.uuid4(),
            officer_id=uuid.uuid4(),
            trace_code=leads.new_trace_code(),
            text="Nothing here varies between copies at all.",
        )
        for _ in range(2)
    ]
    with pytest.raises(leads.TraceError):
        leads.trace("Nothing here varies between copies at all.", copies)
