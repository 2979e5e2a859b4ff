"""Tip-off analysis and programme figures, on a seeded scenario of 20 leads and 10 officers."""

from __future__ import annotations

import random
import secrets
import uuid
from datetime import UTC, datetime

import asyncpg

from clients.reference_client import leads
from tests.leads.conftest import Room, uid

OFFICERS = 10
LEADS = 20
COMPROMISED = range(6)  # leads 0-5 ended with "target gone"
UNJUDGED = 19  # no outcome reported yet: neither compromised nor clean
MOLE = 7
DECOY = 3  # had shares on every compromised lead, but each revoked before it opened
PENDING = 4  # had shares on every compromised lead that no second investigator approved


async def seed(conn: asyncpg.Connection, room: Room) -> list[uuid.UUID]:
    officers = []
    for index in range(OFFICERS):
        account = await conn.fetchval(
            "INSERT INTO accounts (handle, role) VALUES ($1, 'officer') RETURNING id",
            f"seeded-officer-{index}",
        )
        await conn.execute(
            "INSERT INTO officers (account_id, unit, rank, review_due, status, proposed_by, "
            "approved_by, approved_at) VALUES ($1, 'unit', 'rank', current_date + 90, 'active', "
            "$2, $3, now())",
            account,
            uid(room.lead),
            uid(room.second),
        )
        officers.append(account)

    async def share(lead: uuid.UUID, officer: uuid.UUID, **state: bool) -> None:
        revoked = state.get("revoked", False)
        await conn.execute(
            "INSERT INTO lead_shares (lead_id, officer_id, created_by, not_before, expires_at, "
            "directory_version, ciphertext, ciphertext_sha256, trace_digest, requires_approval, "
            "revoked_by, revoked_at) VALUES ($1, $2, $3, now() - interval '10 days', "
            "now() - interval '9 days', 1, '\\x00', $4, $5, $6, $7, "
            "CASE WHEN $7::uuid IS NULL THEN NULL ELSE now() - interval '11 days' END)",
            lead,
            officer,
            uid(room.lead),
            secrets.token_hex(32),
            secrets.token_hex(32),
            state.get("pending", False),
            uid(room.lead) if revoked else None,
        )

    chooser = random.Random(5)  # noqa: S311  (a reproducible scenario, not a secret)
    others = [i for i in range(OFFICERS) if i not in {MOLE, DECOY, PENDING}]
    for number in range(LEADS):
        lead = await conn.fetchval(
            "INSERT INTO leads (created_by, ciphertext, status) VALUES ($1, '\\x00', 'shared') "
            "RETURNING id",
            uid(room.lead),
        )
        readers = set(chooser.sample(others, 2))
        if number in COMPROMISED or number in {6, 7}:
            readers.add(MOLE)
        else:
            readers.add(chooser.choice(others))
        for reader in readers:
            await share(lead, officers[reader])
        if number in COMPROMISED:
            await share(lead, officers[DECOY], revoked=True)
            await share(lead, officers[PENDING], pending=True)
        if number != UNJUDGED:
            outcome = "target_gone" if number in COMPROMISED else "raid_done"
            await conn.execute(
                "INSERT INTO lead_outcomes (lead_id, officer_id, outcome, recorded_at) "
                "VALUES ($1, $2, $3, now() - interval '8 days')",
                lead,
                officers[min(readers)],
                outcome,
            )
    return officers


async def test_the_officer_who_could_read_every_compromised_lead_ranks_first(room: Room) -> None:
    async with room.superuser() as conn:
        officers = await seed(conn, room)
    result = await leads.exposure(room.lead.client, room.lead.token())
    assert len(result["compromised_leads"]) == len(COMPROMISED)
    ranking = result["officers"]
    first = ranking[0]
    assert first["officer_id"] == str(officers[MOLE])
    assert (first["compromised"], first["clean"], first["coverage"]) == (6, 2, 1.0)
    assert all(o["compromised"] < len(COMPROMISED) for o in ranking[1:])
    # Revoked before its window opened, or never approved: no access, so no exposure.
    unexposed = {str(officers[DECOY]), str(officers[PENDING])}
    assert not unexposed & {o["officer_id"] for o in ranking}
    assert all(str(officers[MOLE]) in lead["officers"] for lead in result["compromised_leads"])


async def test_analysis_is_for_investigators_only(room: Room) -> None:
    officer = room.officers[0]
    for path in ("/v1/analysis/exposure", "/v1/metrics/programme"):
        assert (await room.call(officer, "GET", path)).status_code == 403


async def test_programme_figures_per_month(room: Room) -> None:
    officer = room.officers[0]
    await room.vet(officer)
    lead_id = await room.new_lead()
    await room.share(lead_id, officer)
    await leads.report_outcome(
        officer.client,
        officer.token(),
        room.directory,
        lead_id,
        "raid_done",
        arrests=2,
        victims_safe=3,
    )
    async with room.superuser() as conn:
        await conn.execute(
            "INSERT INTO lead_outcomes (lead_id, officer_id, outcome, arrests, victims_safe, "
            "recorded_at) VALUES ($1, $2, 'raid_done', 4, 1, '2026-01-15T12:00:00Z')",
            lead_id,
            uid(officer),
        )
    response = await room.call(room.lead, "GET", "/v1/metrics/programme")
    months = {m["month"]: m for m in response.json()["months"]}
    now = datetime.now(UTC).strftime("%Y-%m")
    assert months["2026-01"] == {
        "month": "2026-01",
        "reports_received": 0,
        "reports_verified": 0,
        "leads": 0,
        "raids": 1,
        "arrests": 4,
        "victims_safe": 1,
    }
    assert months[now] == {
        "month": now,
        "reports_received": 1,
        "reports_verified": 1,
        "leads": 1,
        "raids": 1,
        "arrests": 2,
        "victims_safe": 3,
    }
