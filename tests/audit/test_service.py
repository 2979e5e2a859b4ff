"""`record` (the one writer), `list_events`, and the canonical encoding the chain depends on."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import msgspec
import pytest

from server import db
from server.audit import queries, service
from server.audit.actions import AuditAction
from server.errors import InvalidInput
from tests.audit.conftest import record_events


async def test_record_inserts_one_row_in_the_callers_transaction(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    actor = uuid4()
    async with db.transaction(app_pool, account_id=actor, role="investigator") as conn:
        event_id = await service.record(
            conn,
            AuditAction.SHARE_APPROVED,
            actor_id=actor,
            actor_role="investigator",
            subject_type="share",
            subject_id="7f6c",
            detail={"officer_count": 2, "first_share": True},
        )
    row = await admin.fetchrow("SELECT * FROM audit_events WHERE id = $1", event_id)
    assert row is not None
    assert row["actor_id"] == actor
    assert row["actor_role"] == "investigator"
    assert row["action"] == "share.approved"
    assert (row["subject_type"], row["subject_id"]) == ("share", "7f6c")
    assert msgspec.json.decode(row["detail"]) == {"officer_count": 2, "first_share": True}
    assert await admin.fetchval("SELECT count(*) FROM audit_events") == 1


async def test_an_anonymous_request_can_record_a_failed_login(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    async with db.transaction(app_pool) as conn:
        await service.record(conn, AuditAction.LOGIN_FAILED, actor_id=None, actor_role=None)
    assert await admin.fetchval("SELECT action FROM audit_events") == "login.failed"


async def test_record_accepts_only_the_vocabulary(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    with pytest.raises(TypeError, match="AuditAction"):
        async with db.transaction(app_pool) as conn:
            await service.record(
                conn,
                "login.failed",  # type: ignore[arg-type]
                actor_id=None,
                actor_role=None,
            )
    assert await admin.fetchval("SELECT count(*) FROM audit_events") == 0


@pytest.mark.parametrize(
    "detail",
    [
        {"nested": {"a": 1}},
        {"ratio": 0.5},
        {"none": None},
        {"Bad Key": 1},
        {"long": "x" * 201},
        {"nul": "a\x00b"},
        {"huge": 2**60},
        {f"k{i}": i for i in range(17)},
    ],
)
async def test_record_refuses_detail_that_is_not_small_flat_metadata(
    app_pool: db.Pool, admin: asyncpg.Connection, detail: dict[str, object]
) -> None:
    with pytest.raises((TypeError, ValueError)):
        async with db.transaction(app_pool) as conn:
            await service.record(
                conn,
                AuditAction.LOGIN_FAILED,
                actor_id=None,
                actor_role=None,
                detail=detail,  # type: ignore[arg-type]
            )
    assert await admin.fetchval("SELECT count(*) FROM audit_events") == 0


async def test_a_rolled_back_action_leaves_no_audit_row(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    class ActionFailed(Exception):
        pass

    async def act_then_fail() -> None:
        async with db.transaction(app_pool, role="authenticator") as conn:
            await service.record(
                conn, AuditAction.REPORT_RECEIVED, actor_id=uuid4(), actor_role="operative"
            )
            raise ActionFailed

    with pytest.raises(ActionFailed):
        await act_then_fail()
    assert await admin.fetchval("SELECT count(*) FROM audit_events") == 0


async def test_a_failing_audit_write_fails_the_action(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    # SEC-LOG-04: an action whose audit line cannot be written must not happen at all.
    await admin.execute("CREATE TABLE tipline.scratch_actions (n int)")
    await admin.execute("GRANT INSERT, SELECT ON tipline.scratch_actions TO tipline_app")
    await admin.execute(
        "CREATE FUNCTION tipline.audit_broken() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$"
    )
    await admin.execute(
        "CREATE TRIGGER audit_broken BEFORE INSERT ON tipline.audit_events "
        "FOR EACH ROW EXECUTE FUNCTION tipline.audit_broken()"
    )

    async def act_and_audit() -> None:
        async with db.transaction(app_pool, role="investigator") as conn:
            await conn.execute("INSERT INTO scratch_actions VALUES (1)")
            await service.record(
                conn, AuditAction.SHARE_CREATED, actor_id=uuid4(), actor_role="investigator"
            )

    with pytest.raises(asyncpg.RaiseError, match="audit storage unavailable"):
        await act_and_audit()
    assert await admin.fetchval("SELECT count(*) FROM tipline.scratch_actions") == 0


async def test_list_events_pages_newest_first_by_keyset(app_pool: db.Pool) -> None:
    ids = await record_events(app_pool, 7)
    seen: list[int] = []
    before: int | None = None
    pages = 0
    while True:
        async with db.transaction(app_pool, role="investigator") as conn:
            page = await service.list_events(conn, limit=3, before_id=before)
        seen += [e.id for e in page.events]
        pages += 1
        if page.next_before_id is None:
            break
        before = page.next_before_id
    assert seen == sorted(ids, reverse=True)
    assert pages == 3
    assert page.events[-1].detail == {"n": 0, "size": 2048, "resumed": False}


async def test_list_events_filters_by_action_and_actor(app_pool: db.Pool) -> None:
    await record_events(app_pool, 3)
    actor = uuid4()
    async with db.transaction(app_pool, account_id=actor, role="operative") as conn:
        wanted = await service.record(
            conn, AuditAction.LOGIN_FAILED, actor_id=actor, actor_role="operative"
        )
    async with db.transaction(app_pool, role="admin") as conn:
        by_action = await service.list_events(conn, action=AuditAction.LOGIN_FAILED)
        by_actor = await service.list_events(conn, actor_id=actor)
        by_other = await service.list_events(conn, actor_id=uuid4())
    assert [e.id for e in by_action.events] == [wanted]
    assert [e.id for e in by_actor.events] == [wanted]
    assert by_other.events == []


async def test_list_events_refuses_pages_over_one_hundred(app_pool: db.Pool) -> None:
    async with db.transaction(app_pool, role="admin") as conn:
        with pytest.raises(InvalidInput):
            await service.list_events(conn, limit=101)


async def test_an_operative_sees_an_empty_log_even_through_the_service(app_pool: db.Pool) -> None:
    await record_events(app_pool, 2)
    async with db.transaction(app_pool, role="operative") as conn:
        assert (await service.list_events(conn)).events == []


FIXED_EVENT = queries.EventRow(
    id=42,
    occurred_at=datetime(2024, 5, 1, 3, 4, 5, 678, tzinfo=UTC),
    actor_id=UUID("0b3d8f4e-2a51-4c1e-9e0f-6d1c2b3a4f50"),
    actor_role="investigator",
    action="share.approved",
    subject_type="share",
    subject_id="s-1",
    detail='{"z": 1, "a": "x", "m": true}',
)


def test_canonical_encoding_is_fixed() -> None:
    # Existing chains are only verifiable while this encoding stays byte-for-byte the same.
    assert service.canonical_entry(FIXED_EVENT) == (
        b'["tipline.audit.v1",42,"2024-05-01T03:04:05.000678Z",'
        b'"0b3d8f4e-2a51-4c1e-9e0f-6d1c2b3a4f50","investigator","share.approved","share","s-1",'
        b'{"a":"x","m":true,"z":1}]'
    )
    # jsonb prints keys in its own order; the hash must not depend on it.
    reordered = msgspec.structs.replace(FIXED_EVENT, detail='{"a":"x","m":true,"z":1}')
    assert service.entry_hash(reordered) == service.entry_hash(FIXED_EVENT)


@pytest.mark.parametrize(
    "change",
    [
        {"id": 43},
        {"occurred_at": datetime(2024, 5, 1, 3, 4, 5, 679, tzinfo=UTC)},
        {"actor_id": None},
        {"actor_role": "admin"},
        {"action": "share.revoked"},
        {"subject_type": "lead"},
        {"subject_id": "s-2"},
        {"detail": '{"z": 2, "a": "x", "m": true}'},
    ],
)
def test_every_field_is_covered_by_the_entry_hash(change: dict[str, object]) -> None:
    changed = msgspec.structs.replace(FIXED_EVENT, **change)
    assert service.entry_hash(changed) != service.entry_hash(FIXED_EVENT)


def test_chain_hashes_use_rfc6962_leaf_domain_separation() -> None:
    import hashlib

    entry = hashlib.sha256(b"entry").digest()
    assert (
        service.next_chain_hash(service.ZERO_HASH, entry)
        == hashlib.sha256(b"\x00" + bytes(32) + entry).digest()
    )
