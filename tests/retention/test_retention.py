from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import asyncpg

from server import db
from server.evidence.storage import LocalStorage
from server.retention import service
from server.settings import Settings
from tests.conftest import TestDatabase
from tests.retention.conftest import Site

TICK = timedelta(microseconds=1)


async def _object_exists(site: Site, attachment_id: uuid.UUID) -> bool:
    async with site.room.superuser() as conn:
        key = await conn.fetchval(
            "SELECT storage_key FROM attachments WHERE id = $1", attachment_id
        )
    storage = site.evidence.storage
    assert isinstance(storage, LocalStorage)
    return storage.path(key).exists()


async def _state(site: Site, report_id: uuid.UUID, attachment_id: uuid.UUID) -> tuple[int, str]:
    async with site.room.superuser() as conn:
        length = await conn.fetchval(
            "SELECT octet_length(ciphertext) FROM reports WHERE id = $1", report_id
        )
        status = await conn.fetchval("SELECT status FROM attachments WHERE id = $1", attachment_id)
    return length, status


async def _deletions(conn: asyncpg.Connection, subject: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT id, action, actor_id, actor_role, detail FROM audit_events"
            " WHERE subject_id = $1 AND action IN ('report.shredded', 'attachment.deleted')",
            str(subject),
        )
    )


async def test_a_rejected_report_is_shredded_exactly_n_days_after_rejection(
    site: Site, settings: Settings
) -> None:
    filed = await site.file_report("nothing in it", b"photo bytes " * 1000)
    await site.triage(filed.report_id, "in_review", "rejected")
    rejected_at = await site.changed_at("reports", filed.report_id)
    due = rejected_at + timedelta(days=settings.retention_rejected_days)
    pool = site.room.world.app.state.pool

    early = await service.run_retention(site.retention, pool, now=due - TICK)
    assert early.leader
    assert (early.reports_shredded, early.attachments_shredded) == (0, 0)
    length, status = await _state(site, filed.report_id, filed.attachment_id)
    assert length > 0
    assert status == "complete"
    assert await _object_exists(site, filed.attachment_id)

    run = await service.run_retention(site.retention, pool, now=due)
    assert (run.reports_shredded, run.attachments_shredded) == (1, 1)
    assert await _state(site, filed.report_id, filed.attachment_id) == (0, "deleted")
    assert not await _object_exists(site, filed.attachment_id)

    async with site.room.superuser() as conn:
        report_events = await _deletions(conn, filed.report_id)
        attachment_events = await _deletions(conn, filed.attachment_id)
        custody = await conn.fetch(
            "SELECT event, actor_role, audit_event_id FROM attachment_custody"
            " WHERE attachment_id = $1 ORDER BY id",
            filed.attachment_id,
        )
        digest_kept = await conn.fetchval(
            "SELECT ciphertext_sha256 FROM reports WHERE id = $1", filed.report_id
        )
    assert [(e["action"], e["actor_id"], e["actor_role"]) for e in report_events] == [
        ("report.shredded", None, "retention")
    ]
    assert [(e["action"], e["actor_role"]) for e in attachment_events] == [
        ("attachment.deleted", "retention")
    ]
    assert (custody[-1]["event"], custody[-1]["actor_role"]) == ("deleted", "retention")
    assert custody[-1]["audit_event_id"] == attachment_events[0]["id"]
    assert digest_kept is not None  # what existed stays provable

    again = await service.run_retention(site.retention, pool, now=due + timedelta(days=400))
    assert (again.reports_shredded, again.attachments_shredded) == (0, 0)


async def test_a_shredded_report_cannot_be_revived_or_blanked_by_anyone_else(
    site: Site, settings: Settings
) -> None:
    filed = await site.file_report("junk", b"x" * 100)
    await site.triage(filed.report_id, "in_review", "rejected")
    pool = site.room.world.app.state.pool
    # An investigator context cannot empty a report: only the retention context can.
    async with db.transaction(
        pool, account_id=site.room.lead.account_id, role="investigator"
    ) as conn:
        try:
            await conn.execute(
                "UPDATE reports SET ciphertext = '\\x'::bytea, ciphertext_shredded_at = now()"
                " WHERE id = $1",
                filed.report_id,
            )
        except asyncpg.InsufficientPrivilegeError:
            pass
        else:
            raise AssertionError("an investigator emptied a report's ciphertext")
    far = await site.changed_at("reports", filed.report_id) + timedelta(days=10_000)
    await service.run_retention(site.retention, pool, now=far)
    response = await site.room.call(
        site.room.second, "PATCH", f"/v1/reports/{filed.report_id}", {"status": "in_review"}
    )
    assert response.status_code >= 400


async def test_closed_leads_evidence_goes_after_m_days_unless_held_or_still_needed(
    site: Site, settings: Settings
) -> None:
    pool = site.room.world.app.state.pool
    alone = await site.file_report("a", b"a" * 500)
    shared = await site.file_report("b", b"b" * 500)
    held = await site.file_report("c", b"c" * 500)
    for filed in (alone, shared, held):
        await site.triage(filed.report_id, "in_review", "verified")
    lead_alone = await site.lead_from([alone.report_id])
    lead_shared_closed = await site.lead_from([shared.report_id])
    await site.lead_from([shared.report_id])  # still open: the evidence is still needed
    lead_held = await site.lead_from([held.report_id])
    for lead_id in (lead_alone, lead_shared_closed, lead_held):
        await site.close_lead(lead_id)
    assert await service.place_hold(pool, lead_held)
    assert not await service.place_hold(pool, lead_held)  # idempotent, audited once

    closed_at = max(
        [await site.changed_at("leads", i) for i in (lead_alone, lead_shared_closed, lead_held)]
    )
    first_closed = await site.changed_at("leads", lead_alone)
    due = first_closed + timedelta(days=settings.retention_closed_lead_days)

    early = await service.run_retention(site.retention, pool, now=due - TICK)
    assert early.attachments_shredded == 0
    run = await service.run_retention(site.retention, pool, now=due)
    assert run.attachments_shredded == 1
    length, status = await _state(site, alone.report_id, alone.attachment_id)
    assert status == "deleted"
    # The report of a closed case keeps its own ciphertext: only evidence objects go.
    assert length > 0
    assert not await _object_exists(site, alone.attachment_id)

    much_later = closed_at + timedelta(days=settings.retention_closed_lead_days * 3)
    later = await service.run_retention(site.retention, pool, now=much_later)
    assert later.attachments_shredded == 0
    assert (await _state(site, shared.report_id, shared.attachment_id))[1] == "complete"
    assert (await _state(site, held.report_id, held.attachment_id))[1] == "complete"
    assert await _object_exists(site, held.attachment_id)

    assert await service.release_hold(pool, lead_held)
    released = await service.run_retention(site.retention, pool, now=much_later)
    assert released.attachments_shredded == 1
    assert (await _state(site, held.report_id, held.attachment_id))[1] == "deleted"
    async with site.room.superuser() as conn:
        holds = await conn.fetch(
            "SELECT action, actor_role FROM audit_events WHERE subject_id = $1"
            " AND action LIKE 'lead.hold_%' ORDER BY id",
            str(lead_held),
        )
        reason = await conn.fetchval(
            "SELECT detail->>'reason' FROM audit_events WHERE subject_id = $1"
            " AND action = 'attachment.deleted'",
            str(held.attachment_id),
        )
    assert [(h["action"], h["actor_role"]) for h in holds] == [
        ("lead.hold_placed", "retention"),
        ("lead.hold_released", "retention"),
    ]
    assert reason == "lead_closed"


async def test_two_processes_running_the_job_at_once_delete_each_item_once(
    site: Site, settings: Settings, database: TestDatabase
) -> None:
    filed = [await site.file_report(f"r{i}", bytes([i]) * 300) for i in range(3)]
    for item in filed:
        await site.triage(item.report_id, "in_review", "rejected")
    now = max([await site.changed_at("reports", f.report_id) for f in filed]) + timedelta(
        days=settings.retention_rejected_days
    )
    pools = [await db.create_pool(settings, database.app_url) for _ in range(2)]
    try:
        runs = await asyncio.gather(
            *(service.run_retention(site.retention, p, now=now) for p in pools)
        )
    finally:
        for p in pools:
            await p.close()
    assert sum(r.reports_shredded for r in runs) == 3
    assert sum(r.attachments_shredded for r in runs) == 3
    async with site.room.superuser() as conn:
        shredded = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'report.shredded'"
        )
        deleted = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE action = 'attachment.deleted'"
            " AND actor_role = 'retention'"
        )
        custody = await conn.fetchval(
            "SELECT count(*) FROM attachment_custody WHERE event = 'deleted'"
        )
    assert (shredded, deleted, custody) == (3, 3, 3)


async def test_dead_sessions_and_idle_throttle_rows_are_swept_on_the_clock(
    site: Site, settings: Settings
) -> None:
    pool = site.room.world.app.state.pool
    async with site.room.superuser() as conn:
        sessions_before = await conn.fetchval("SELECT count(*) FROM sessions")
        throttle_before = await conn.fetchval(
            "SELECT count(*) FROM login_throttle WHERE consecutive_failures = 0 AND NOT locked"
        )
        latest = await conn.fetchval("SELECT max(updated_at) FROM login_throttle")
    assert sessions_before > 0
    assert throttle_before > 0
    run = await service.run_retention(site.retention, pool, now=latest)
    assert (run.sessions_deleted, run.throttle_rows_deleted) == (0, 0)
    # Past every session's lifetime plus the day of grace, and a day after the last login.
    later = latest + timedelta(seconds=settings.session_lifetime_investigator_s + 86_400 + 1)
    run = await service.run_retention(site.retention, pool, now=later)
    assert run.sessions_deleted == sessions_before
    assert run.throttle_rows_deleted == throttle_before
    async with site.room.superuser() as conn:
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 0
