"""Downloads with HTTP Range, each one a custody event sealed into the audit chain; the custody
log; the report-intake check of cited attachments; row-level security on the tables."""

from __future__ import annotations

import hashlib
from uuid import UUID, uuid4

import asyncpg
import httpx
import msgspec
import pytest

from clients.reference_client.envelope import AttachmentDigest
from clients.reference_client.reports import Submission, TipReport, open_report, seal_report
from server.db import transaction
from tests.conftest import TestDatabase
from tests.evidence.conftest import Desk, Tus, age_blob


async def uploaded(tus: Tus, data: bytes) -> UUID:
    attachment_id, created = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert created.status_code == 201
    assert (await tus.patch(attachment_id, 0, data)).status_code == 204
    return attachment_id


async def test_range_downloads_and_their_custody_events(desk: Desk) -> None:
    data = age_blob(3 * 2**20 + 5)
    attachment_id = await uploaded(Tus(desk.operative), data)
    investigator = Tus(desk.investigator)

    whole = await investigator.download(attachment_id)
    assert whole.status_code == 200
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["ETag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    middle = await investigator.download(attachment_id, "bytes=1000-2999999")
    assert middle.status_code == 206
    assert middle.content == data[1000:3_000_000]
    assert middle.headers["Content-Range"] == f"bytes 1000-2999999/{len(data)}"
    suffix = await investigator.download(attachment_id, "bytes=-10")
    assert suffix.status_code == 206
    assert suffix.content == data[-10:]
    open_ended = await investigator.download(attachment_id, f"bytes={len(data) - 3}-")
    assert open_ended.content == data[-3:]
    beyond = await investigator.download(attachment_id, f"bytes={len(data)}-")
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    assert beyond.headers["content-type"].startswith("application/problem+json")

    log = (await investigator.custody(attachment_id)).json()
    events = log["events"]
    assert log["status"] == "complete"
    assert [e["event"] for e in events] == [
        "received",
        "completed",
        "downloaded",
        "downloaded",
        "downloaded",
        "downloaded",
    ]
    assert events[0]["actor_id"] == str(desk.operative.account_id)
    assert {e["actor_id"] for e in events[2:]} == {str(desk.investigator.account_id)}
    assert [(e["range_start"], e["range_end"]) for e in events[2:]] == [
        (0, len(data) - 1),
        (1000, 2_999_999),
        (len(data) - 10, len(data) - 1),
        (len(data) - 3, len(data) - 1),
    ]
    # Every custody event is an audit event about this attachment (so the sealer chains it).
    admin = await asyncpg.connect(desk.admin_url)
    try:
        audited = await admin.fetch(
            "SELECT id, action, actor_id FROM tipline.audit_events"
            " WHERE subject_type = 'attachment' AND subject_id = $1 ORDER BY id",
            str(attachment_id),
        )
        with pytest.raises(asyncpg.PostgresError):
            await admin.execute("DELETE FROM tipline.attachment_custody")
    finally:
        await admin.close()
    assert [r["id"] for r in audited] == [e["audit_event_id"] for e in events]
    assert [r["action"] for r in audited] == [
        "attachment.received",
        "attachment.completed",
        *["attachment.downloaded"] * 4,
    ]


async def test_the_custody_log_is_for_investigators(desk: Desk) -> None:
    attachment_id = await uploaded(Tus(desk.operative), age_blob(1000))
    assert (await Tus(desk.operative).custody(attachment_id)).status_code == 403
    assert (await Tus(desk.investigator).custody(uuid4())).status_code == 404


async def test_a_report_cites_only_its_operatives_complete_matching_attachments(
    desk: Desk,
) -> None:
    await desk.world.publish_directory(desk.investigator, [desk.investigator])
    directory = desk.world.directory
    assert directory is not None
    data = age_blob(5000)
    digest = hashlib.sha256(data).hexdigest()
    operative = Tus(desk.operative)
    done = await uploaded(operative, data)
    unfinished, _ = await operative.create(len(data), digest)
    foreign = await uploaded(Tus(desk.other_operative), data)

    def cite(attachment_id: UUID, ciphertext_sha256: str = digest) -> AttachmentDigest:
        return AttachmentDigest(attachment_id, "a" * 64, ciphertext_sha256)

    async def send(*cited: AttachmentDigest) -> tuple[Submission, httpx.Response]:
        submission = seal_report(
            desk.operative.device, directory, TipReport(text="see attached"), attachments=cited
        )
        response = await desk.operative.client.call(
            "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(submission)
        )
        return submission, response

    for refused, field in (
        (cite(unfinished), "attachment_id"),
        (cite(foreign), "attachment_id"),
        (cite(uuid4()), "attachment_id"),
        (cite(done, "b" * 64), "ciphertext_sha256"),
    ):
        _, response = await send(refused)
        assert response.status_code == 422
        assert [e["path"] for e in response.json()["errors"]] == [f"$.attachments[0].{field}"]

    first, response = await send(cite(done))
    assert response.status_code == 201
    retried = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(first)
    )
    assert retried.status_code == 200
    _, second = await send(cite(done))
    assert second.status_code == 409

    # The investigator's client rebuilds the signed message from the cited digests.
    detail = await desk.investigator.client.call(
        "GET", f"/v1/reports/{first.report_id}", desk.investigator.token()
    )
    cited = detail.json()["attachments"]
    assert cited == [
        {"attachment_id": str(done), "plaintext_sha256": "a" * 64, "ciphertext_sha256": digest}
    ]
    opened = open_report(detail.json(), str(desk.investigator.age_identity))
    assert opened.text == "see attached"
    admin = await asyncpg.connect(desk.admin_url)
    try:
        stored = await admin.fetchval("SELECT count(*) FROM tipline.reports")
        linked = await admin.fetch(
            "SELECT id, report_id FROM tipline.attachments WHERE report_id IS NOT NULL"
        )
    finally:
        await admin.close()
    assert stored == 1
    assert [(r["id"], r["report_id"]) for r in linked] == [(done, first.report_id)]

    # The owner may fetch it back until the citing report is triaged; investigators always.
    assert (await operative.download(done)).status_code == 200
    admin = await asyncpg.connect(desk.admin_url)
    try:
        await admin.execute(
            "UPDATE tipline.reports SET status = 'in_review' WHERE id = $1", first.report_id
        )
    finally:
        await admin.close()
    assert (await operative.download(done)).status_code == 404
    assert (await Tus(desk.investigator).download(done)).content == data


async def test_row_level_security_hides_other_peoples_uploads(desk: Desk) -> None:
    data = age_blob(1000)
    attachment_id = await uploaded(Tus(desk.operative), data)
    pool = desk.world.app.state.pool
    assert desk.other_operative.account_id is not None
    async with transaction(
        pool, account_id=desk.other_operative.account_id, role="operative"
    ) as conn:
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 0
        assert await conn.fetchval("SELECT count(*) FROM attachment_custody") == 0
    async with transaction(pool) as conn:
        assert await conn.fetchval("SELECT count(*) FROM attachments") == 0
    async with transaction(
        pool, account_id=desk.investigator.account_id, role="investigator"
    ) as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM attachments WHERE id = $1", attachment_id)
            == 1
        )
        # Investigators read, but cannot move someone else's upload.
        updated = await conn.execute(
            "UPDATE attachments SET upload_offset = 0 WHERE id = $1", attachment_id
        )
        assert updated == "UPDATE 0"
    admin = await asyncpg.connect(desk.admin_url)
    try:
        flags = await admin.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relname IN ('attachments', 'attachment_custody')"
        )
        with pytest.raises(asyncpg.PostgresError):
            await admin.execute(
                "UPDATE tipline.attachments SET ciphertext_sha256 = $2 WHERE id = $1",
                attachment_id,
                "c" * 64,
            )
    finally:
        await admin.close()
    assert len(flags) == 2
    assert all(r["relrowsecurity"] and r["relforcerowsecurity"] for r in flags)


async def test_the_intake_statement_itself_refuses_a_citation_it_cannot_make(
    desk: Desk, database: TestDatabase
) -> None:
    # The pre-check in Python can lose a race; the statement that stores the report re-checks
    # and stores nothing when an attachment is no longer this report's to cite.
    data = age_blob(300)
    digest = hashlib.sha256(data).hexdigest()
    done = await uploaded(Tus(desk.operative), data)
    spare = await uploaded(Tus(desk.operative), data)
    foreign = await uploaded(Tus(desk.other_operative), data)
    assert desk.operative.account_id is not None
    conn = await asyncpg.connect(database.app_url, server_settings={"search_path": "tipline"})
    admin = await asyncpg.connect(desk.admin_url)
    try:
        device_id = await admin.fetchval(
            "SELECT id FROM tipline.devices WHERE account_id = $1", desk.operative.account_id
        )
        await admin.execute(
            "INSERT INTO tipline.key_directories (version, directory, signature, published_by)"
            " SELECT 1, '\\x7b7d'::bytea, $1, id FROM tipline.accounts WHERE role = 'investigator'",
            bytes(64),
        )

        async def intake(report_id: UUID, attachment: UUID, ciphertext_sha256: str) -> str:
            row = await conn.fetchrow(
                "SELECT outcome FROM submit_report($1, 'operative', false, $2, $3,"
                " '2026-11-30T07:00:00Z', now(), 1, '\\x00', $4, 'sig', $4, '{}'::jsonb,"
                " $5::uuid[], $6::text[], $7::text[])",
                desk.operative.account_id,
                report_id,
                device_id,
                "d" * 64,
                [attachment],
                ["a" * 64],
                [ciphertext_sha256],
            )
            assert row is not None
            outcome: str = row["outcome"]
            return outcome

        first = uuid4()
        assert await intake(first, done, digest) == "created"
        refusals = [(uuid4(), done, digest), (uuid4(), foreign, digest), (uuid4(), spare, "b" * 64)]
        for report_id, attachment, cited_digest in refusals:
            with pytest.raises(asyncpg.UniqueViolationError):
                await intake(report_id, attachment, cited_digest)
        stored = await admin.fetch("SELECT id FROM tipline.reports")
        audited = await admin.fetchval(
            "SELECT count(*) FROM tipline.audit_events WHERE action = 'report.received'"
        )
    finally:
        await conn.close()
        await admin.close()
    assert [r["id"] for r in stored] == [first]
    assert audited == 1
