"""Sealing, and the verifier catching each way history can be rewritten (SEC-LOG-03)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import db
from server.audit import queries, sealer, service
from server.audit.actions import AuditAction
from server.audit.schemas import BreakReason, Checkpoint
from server.sql import query
from tests.audit.conftest import record_events, verify


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@asynccontextmanager
async def triggers_disabled(
    admin: asyncpg.Connection, table: str, which: str = "USER"
) -> AsyncIterator[None]:
    # The attacker is a superuser: switching the append-only triggers off is within reach.
    await admin.execute(f"ALTER TABLE {table} DISABLE TRIGGER {which}")
    try:
        yield
    finally:
        await admin.execute(f"ALTER TABLE {table} ENABLE TRIGGER {which}")


async def position_of(admin: asyncpg.Connection, event_id: int) -> int:
    position: int = await admin.fetchval(
        "SELECT position FROM audit_chain WHERE event_id = $1", event_id
    )
    return position


async def seal_all(pool: db.Pool, key: Ed25519PrivateKey | None = None, batch: int = 4) -> int:
    total = 0
    while sealed := await sealer.seal_pending(pool, batch=batch, signing_key=key):
        total += sealed
    return total


async def test_sealed_chain_verifies(app_pool: db.Pool, signing_key: Ed25519PrivateKey) -> None:
    ids = await record_events(app_pool, 10)
    assert await seal_all(app_pool, signing_key) == 10
    result = await verify(app_pool, public_key=signing_key.public_key())
    assert result.ok, result
    assert result.head_position == 10
    assert result.unsealed_events == 0
    assert result.checkpoints_checked == 3  # batches of 4, 4, 2
    assert await sealer.seal_pending(app_pool, batch=4, signing_key=signing_key) == 0
    assert len(ids) == 10


async def test_an_empty_chain_verifies(app_pool: db.Pool) -> None:
    result = await verify(app_pool)
    assert (result.ok, result.head_position, result.head_chain_hash) == (True, 0, None)


async def test_unsealed_events_are_counted_not_failed(app_pool: db.Pool) -> None:
    await record_events(app_pool, 3)
    await sealer.seal_pending(app_pool, batch=2, signing_key=None)
    result = await verify(app_pool)
    assert (result.ok, result.head_position, result.unsealed_events) == (True, 2, 1)


async def test_altering_a_field_is_caught_at_that_event(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    ids = await record_events(app_pool, 8)
    await seal_all(app_pool)
    victim = ids[4]
    async with triggers_disabled(admin, "audit_events"):
        await admin.execute(
            "UPDATE audit_events SET detail = detail || '{\"n\": 99}' WHERE id = $1", victim
        )
    result = await verify(app_pool)
    assert not result.ok
    assert result.reason is BreakReason.ENTRY_MISMATCH
    assert result.broken_position == await position_of(admin, victim)
    assert result.broken_event_id == victim
    assert result.head_position == result.broken_position - 1


async def test_deleting_an_event_is_caught_at_that_event(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    ids = await record_events(app_pool, 8)
    await seal_all(app_pool)
    victim = ids[2]
    position = await position_of(admin, victim)
    # ALL: the chain's foreign key would refuse the delete too.
    async with triggers_disabled(admin, "audit_events", "ALL"):
        await admin.execute("DELETE FROM audit_events WHERE id = $1", victim)
    result = await verify(app_pool)
    assert (result.ok, result.reason) == (False, BreakReason.MISSING_EVENT)
    assert (result.broken_position, result.broken_event_id) == (position, victim)


async def test_swapping_two_events_is_caught_at_the_first(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    ids = await record_events(app_pool, 6)
    await seal_all(app_pool)
    a, b = ids[1], ids[3]
    async with triggers_disabled(admin, "audit_events"):
        await admin.execute(
            "UPDATE audit_events e SET subject_id = o.subject_id, detail = o.detail "
            "FROM audit_events o WHERE (e.id, o.id) IN (($1, $2), ($2, $1))",
            a,
            b,
        )
    result = await verify(app_pool)
    assert result.reason is BreakReason.ENTRY_MISMATCH
    assert result.broken_position == await position_of(admin, a)


async def test_reordering_the_chain_is_caught(app_pool: db.Pool, admin: asyncpg.Connection) -> None:
    await record_events(app_pool, 6)
    await seal_all(app_pool)
    async with triggers_disabled(admin, "audit_chain"):
        await admin.execute(
            "UPDATE audit_chain SET position = position + 1000 WHERE position IN (3, 4)"
        )
        await admin.execute(
            "UPDATE audit_chain SET position = CASE position WHEN 1003 THEN 4 ELSE 3 END "
            "WHERE position > 1000"
        )
    result = await verify(app_pool)
    assert (result.reason, result.broken_position) == (BreakReason.LINK_MISMATCH, 3)


async def test_deleting_a_chain_row_is_caught_at_its_position(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    await record_events(app_pool, 6)
    await seal_all(app_pool)
    async with triggers_disabled(admin, "audit_chain", "ALL"):
        await admin.execute("DELETE FROM audit_chain WHERE position = 2")
    result = await verify(app_pool)
    assert (result.reason, result.broken_position) == (BreakReason.MISSING_POSITION, 2)


async def test_truncating_the_tail_is_caught_by_the_signed_checkpoint(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    await record_events(app_pool, 6)
    await seal_all(app_pool, signing_key, batch=6)
    await record_events(app_pool, 4)
    await seal_all(app_pool, signing_key, batch=6)
    # The tail goes, with its events, so nothing is left unsealed to give it away.
    async with triggers_disabled(admin, "audit_chain", "ALL"):
        gone = await admin.fetch("DELETE FROM audit_chain WHERE position > 7 RETURNING event_id")
    async with triggers_disabled(admin, "audit_events", "ALL"):
        await admin.execute(
            "DELETE FROM audit_events WHERE id = ANY($1::bigint[])", [r[0] for r in gone]
        )
    result = await verify(app_pool)
    assert (result.ok, result.reason) == (False, BreakReason.TAIL_TRUNCATED)
    assert (result.broken_position, result.head_position) == (8, 7)


async def test_an_exported_checkpoint_catches_a_tail_cut_with_its_checkpoints(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    await record_events(app_pool, 5)
    await seal_all(app_pool, signing_key, batch=5)
    await record_events(app_pool, 5)
    await seal_all(app_pool, signing_key, batch=5)
    async with db.transaction(app_pool, role=service.AUDITOR_ROLE) as conn:
        latest = await queries.latest_checkpoint(conn)
    assert latest is not None
    assert latest.position == 10
    exported = Checkpoint(
        position=latest.position,
        chain_hash=latest.chain_hash.hex(),
        signature=latest.signature.hex(),
    )
    # Everything after position 5 goes, checkpoints included: the database alone looks clean.
    for table in ("audit_checkpoints", "audit_chain"):
        async with triggers_disabled(admin, table, "ALL"):
            await admin.execute(f"DELETE FROM {table} WHERE position > 5")
    async with triggers_disabled(admin, "audit_events", "ALL"):
        await admin.execute(
            "DELETE FROM audit_events e WHERE NOT EXISTS "
            "(SELECT FROM audit_chain c WHERE c.event_id = e.id)"
        )
    assert (await verify(app_pool)).ok
    result = await verify(app_pool, public_key=signing_key.public_key(), trusted=[exported])
    assert (result.reason, result.broken_position) == (BreakReason.TAIL_TRUNCATED, 6)


async def rewrite_from(admin: asyncpg.Connection, position: int) -> None:
    """Recompute every link from `position` on, as an attacker who knows the algorithm would."""
    rows = await admin.fetch(
        "SELECT c.position, e.id, e.occurred_at, e.actor_id, e.actor_role, e.action, "
        "e.subject_type, e.subject_id, e.detail::text AS detail "
        "FROM audit_chain c JOIN audit_events e ON e.id = c.event_id ORDER BY c.position"
    )
    previous = service.ZERO_HASH
    async with triggers_disabled(admin, "audit_chain"):
        for row in rows:
            event = queries.EventRow(**{k: v for k, v in row.items() if k != "position"})
            entry = service.entry_hash(event)
            chain = service.next_chain_hash(previous, entry)
            if row["position"] >= position:
                await admin.execute(
                    "UPDATE audit_chain SET entry_hash = $2, chain_hash = $3 WHERE position = $1",
                    row["position"],
                    entry,
                    chain,
                )
            previous = chain


async def test_a_rewritten_history_contradicts_the_signed_checkpoint(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    ids = await record_events(app_pool, 6)
    await seal_all(app_pool, signing_key, batch=6)
    victim = ids[2]
    async with triggers_disabled(admin, "audit_events"):
        await admin.execute("UPDATE audit_events SET subject_id = 'other' WHERE id = $1", victim)
    await rewrite_from(admin, await position_of(admin, victim))
    result = await verify(app_pool)
    assert (result.reason, result.broken_position) == (BreakReason.CHECKPOINT_MISMATCH, 6)

    # Re-signing needs the sealer's key: a checkpoint forged with another key does not verify.
    head = await admin.fetchrow("SELECT position, chain_hash FROM audit_chain WHERE position = 6")
    forged = Ed25519PrivateKey.generate().sign(
        service.checkpoint_message(head["position"], head["chain_hash"])
    )
    async with triggers_disabled(admin, "audit_checkpoints"):
        await admin.execute(
            "UPDATE audit_checkpoints SET chain_hash = $1, signature = $2 WHERE position = 6",
            head["chain_hash"],
            forged,
        )
    assert (await verify(app_pool)).ok, "without the public key only consistency is checked"
    result = await verify(app_pool, public_key=signing_key.public_key())
    assert (result.reason, result.broken_position) == (BreakReason.BAD_SIGNATURE, 6)


async def test_200_concurrent_records_are_each_sealed_exactly_once(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    async def one(i: int) -> int:
        async with db.transaction(app_pool, role="authenticator") as conn:
            return await service.record(
                conn,
                AuditAction.ATTACHMENT_RECEIVED,
                actor_id=uuid4(),
                actor_role="operative",
                detail={"i": i},
            )

    ids = await asyncio.gather(*(one(i) for i in range(200)))
    assert len(set(ids)) == 200
    assert await seal_all(app_pool, signing_key, batch=64) == 200
    assert (await verify(app_pool, public_key=signing_key.public_key())).ok
    sealed = await admin.fetch("SELECT event_id FROM audit_chain ORDER BY position")
    assert sorted(r[0] for r in sealed) == sorted(ids)
    positions = await admin.fetch("SELECT position FROM audit_chain ORDER BY position")
    assert [r[0] for r in positions] == list(range(1, 201))


async def test_concurrent_sealers_never_fork_or_duplicate(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(40):
            async with db.transaction(app_pool, role="authenticator") as conn:
                await service.record(
                    conn,
                    AuditAction.MESSAGE_SENT,
                    actor_id=None,
                    actor_role="operative",
                    detail={"w": w, "i": i},
                )

    async def sealer_loop() -> int:
        total = 0
        while not stop.is_set():
            total += await sealer.seal_pending(app_pool, batch=7, signing_key=signing_key)
            await asyncio.sleep(0)
        return total

    sealers = [asyncio.create_task(sealer_loop()) for _ in range(4)]
    await asyncio.gather(*(writer(w) for w in range(5)))
    stop.set()
    totals = await asyncio.gather(*sealers)
    leftover = await seal_all(app_pool, signing_key)
    assert sum(totals) > 0
    assert sum(totals) + leftover == 200

    chain = await admin.fetch("SELECT position, event_id FROM audit_chain ORDER BY position")
    assert [r["position"] for r in chain] == list(range(1, 201))
    assert len({r["event_id"] for r in chain}) == 200
    assert await admin.fetchval("SELECT count(*) FROM audit_events") == 200
    assert (await verify(app_pool, public_key=signing_key.public_key())).ok


async def test_background_sealer_seals_and_survives_database_errors(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    await admin.execute(
        "CREATE FUNCTION tipline.chain_down() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$"
    )
    await admin.execute(
        "CREATE TRIGGER chain_down BEFORE INSERT ON tipline.audit_chain "
        "FOR EACH ROW EXECUTE FUNCTION tipline.chain_down()"
    )
    background = sealer.Sealer(app_pool, interval_s=0.02, signing_key=signing_key, batch=3)
    background.start()
    try:
        await record_events(app_pool, 5)
        await asyncio.sleep(0.2)
        assert await admin.fetchval("SELECT count(*) FROM audit_chain") == 0
        await admin.execute("DROP TRIGGER chain_down ON tipline.audit_chain")
        for _ in range(500):
            if await admin.fetchval("SELECT count(*) FROM audit_chain") == 5:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the sealer did not recover after the database error cleared")
    finally:
        await background.stop()
    assert (await verify(app_pool, public_key=signing_key.public_key())).ok


async def test_an_event_committed_after_a_later_one_is_still_sealed(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    # A slow transaction draws the lower id, a fast one the higher and commits first; a pass in
    # between must not move its horizon past the slow one (0012_audit_seal_horizon.sql).
    slow = await app_pool.acquire()
    try:
        transaction = slow.transaction()
        await transaction.start()
        await slow.execute(query("context.set_account"), "", "operative", "false")
        slow_id = await service.record(
            slow, AuditAction.REPORT_RECEIVED, actor_id=None, actor_role="operative"
        )
        [fast_id] = await record_events(app_pool, 1)
        assert slow_id < fast_id
        assert await seal_all(app_pool, signing_key) == 1
        await transaction.commit()
    finally:
        await app_pool.release(slow)
    assert await seal_all(app_pool, signing_key) == 1
    assert await position_of(admin, slow_id) == 2
    result = await verify(app_pool, public_key=signing_key.public_key())
    assert result.ok, result
    assert result.unsealed_events == 0


async def test_the_search_starts_at_the_horizon_and_a_writer_cannot_forge_its_place(
    app_pool: db.Pool, admin: asyncpg.Connection, signing_key: Ed25519PrivateKey
) -> None:
    await record_events(app_pool, 3)
    await seal_all(app_pool, signing_key)
    horizon = await admin.fetchval("SELECT horizon::text::bigint FROM audit_seal_horizon")
    assert horizon > 0
    # An event claiming an old transaction id (below the horizon) would hide from the sealer;
    # the stamp trigger writes the real one.
    async with db.transaction(app_pool, role="operative") as conn:
        event_id = await conn.fetchval(
            "INSERT INTO audit_events (id, actor_role, action, xact) OVERRIDING SYSTEM VALUE"
            " VALUES (nextval(pg_get_serial_sequence('tipline.audit_events', 'id')),"
            " 'operative', 'report.received', '1'::xid8)"
            " RETURNING (SELECT currval(pg_get_serial_sequence('tipline.audit_events', 'id')))"
        )
    written = await admin.fetchval(
        "SELECT xact::text::bigint FROM audit_events WHERE id = $1", event_id
    )
    assert written >= horizon
    assert await seal_all(app_pool, signing_key) == 1
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(app_pool, role=service.AUDITOR_ROLE) as conn:
            await conn.execute("UPDATE audit_seal_horizon SET horizon = '1'::xid8")
