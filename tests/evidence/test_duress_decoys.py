"""A duress session's uploads store nothing, yet answer like real ones on every server process:
what it was told (length and offset) lives in `evidence_decoys`, which only that account's
duress sessions can see (0013_evidence_decoys.sql)."""

from __future__ import annotations

import hashlib
from uuid import uuid4

import asyncpg
import pytest

from clients.reference_client.api import TiplineClient
from server.db import transaction
from server.evidence.service import SWEEPER_ROLE, sweep_expired
from tests.conftest import LiveServer
from tests.evidence.conftest import Desk, Tus, age_blob
from tests.evidence.test_hardening import duress_session

DECOY_INSERT = (
    "INSERT INTO evidence_decoys (account_id, attachment_id, upload_length, declared_sha256,"
    " expires_at) VALUES ($1, $2, 10, repeat('0', 64), now() + make_interval(secs => $3))"
)


async def test_a_duress_upload_answers_the_same_on_another_server_process(desk: Desk) -> None:
    await duress_session(desk)
    data = age_blob(50_000)
    first = Tus(desk.operative)
    attachment_id, created = await first.create(len(data), hashlib.sha256(data).hexdigest())
    assert created.status_code == 201
    assert (await first.patch(attachment_id, 0, data[:20_000])).status_code == 204
    async with (
        LiveServer(desk.evidence.settings) as other,
        TiplineClient(other.base_url, desk.operative.device) as client,
    ):
        # Another replica, or this one after a restart: it never saw the creation.
        second = Tus(desk.operative, client)
        head = await second.head(attachment_id)
        assert head.status_code == 200
        assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("20000", "50000")
        assert "Upload-Expires" in head.headers
        behind = await second.patch(attachment_id, 0, data[:10])
        assert (behind.status_code, behind.headers["Upload-Offset"]) == (409, "20000")
        done = await second.patch(attachment_id, 20_000, data[20_000:])
        assert (done.status_code, done.headers["Upload-Offset"]) == (204, "50000")
    finished = await first.head(attachment_id)
    assert (finished.status_code, finished.headers["Upload-Offset"]) == (200, "50000")
    assert "Upload-Expires" not in finished.headers
    assert (await first.patch(uuid4(), 0, b"x")).status_code == 404
    assert (await first.request("DELETE", f"/v1/uploads/{uuid4()}")).status_code == 404
    assert (await first.request("DELETE", f"/v1/uploads/{attachment_id}")).status_code == 409

    admin = await asyncpg.connect(desk.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM tipline.attachments") == 0
        rows = await admin.fetch("SELECT * FROM tipline.evidence_decoys")
    finally:
        await admin.close()
    assert [(r["attachment_id"], r["upload_offset"], r["status"]) for r in rows] == [
        (attachment_id, 50_000, "complete")
    ]


async def test_decoys_are_seen_only_by_their_accounts_duress_sessions(desk: Desk) -> None:
    pool = desk.world.app.state.pool
    mine, theirs = desk.operative.account_id, desk.other_operative.account_id
    live, stale = uuid4(), uuid4()
    async with transaction(pool, account_id=mine, role="operative", duress=True) as conn:
        await conn.execute(DECOY_INSERT, mine, live, 3600.0)
        await conn.execute(DECOY_INSERT, mine, stale, -1.0)
    async with transaction(pool, account_id=mine, role="operative", duress=True) as conn:
        assert await conn.fetchval("SELECT count(*) FROM evidence_decoys") == 2
    # No other context reads, changes or forges them: the account's own normal session, an
    # investigator, another account's duress session, no context at all.
    for context in (
        {"account_id": mine, "role": "operative"},
        {"account_id": desk.investigator.account_id, "role": "investigator"},
        {"account_id": theirs, "role": "operative", "duress": True},
        {},
    ):
        async with transaction(pool, **context) as conn:
            assert await conn.fetchval("SELECT count(*) FROM evidence_decoys") == 0
            assert await conn.execute("DELETE FROM evidence_decoys") == "DELETE 0"
            assert await conn.execute("UPDATE evidence_decoys SET upload_offset = 1") == "UPDATE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with transaction(pool, account_id=theirs, role="operative", duress=True) as conn:
            await conn.execute(DECOY_INSERT, mine, uuid4(), 3600.0)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with transaction(pool, account_id=mine, role="operative") as conn:
            await conn.execute(DECOY_INSERT, mine, uuid4(), 3600.0)

    # The sweeper retires the expired one only (as it retires real uploads), and can neither
    # read nor change the live one, nor delete anything.
    async with transaction(pool, role=SWEEPER_ROLE) as conn:
        assert [r[0] for r in await conn.fetch("SELECT attachment_id FROM evidence_decoys")] == [
            stale
        ]
        retire_live = "UPDATE evidence_decoys SET status = 'deleted' WHERE attachment_id = $1"
        assert await conn.execute(retire_live, live) == "UPDATE 0"
        assert await conn.execute("DELETE FROM evidence_decoys") == "DELETE 0"
    await sweep_expired(desk.evidence, pool)
    async with transaction(pool, account_id=mine, role="operative", duress=True) as conn:
        statuses = dict(await conn.fetch("SELECT attachment_id, status FROM evidence_decoys"))
    assert statuses == {live: "uploading", stale: "deleted"}
