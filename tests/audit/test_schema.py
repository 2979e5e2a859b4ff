"""The database itself keeps the audit tables append-only and readable only by the right roles."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server import db
from server.audit import sealer, service
from server.audit.actions import AuditAction
from tests.audit.conftest import record_events

AUDIT_TABLES = ["audit_events", "audit_chain", "audit_checkpoints"]
WRITES = {
    "update": "UPDATE {table} SET {column} = {column}",
    "delete": "DELETE FROM {table}",
    "truncate": "TRUNCATE {table} CASCADE",
    "alter": "ALTER TABLE {table} DISABLE TRIGGER USER",
    "drop": "DROP TABLE {table} CASCADE",
}
A_COLUMN = {"audit_events": "detail", "audit_chain": "sealed_at", "audit_checkpoints": "signed_at"}


@pytest.fixture
async def sealed(app_pool: db.Pool) -> None:
    await record_events(app_pool, 3)
    await sealer.seal_pending(app_pool, batch=10, signing_key=Ed25519PrivateKey.generate())


async def _counts(admin: asyncpg.Connection) -> dict[str, int]:
    return {t: await admin.fetchval(f"SELECT count(*) FROM {t}") for t in AUDIT_TABLES}


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("table", AUDIT_TABLES)
@pytest.mark.parametrize("write", sorted(WRITES))
async def test_app_role_cannot_change_audit_tables(
    app_pool: db.Pool, admin: asyncpg.Connection, table: str, write: str
) -> None:
    before = await _counts(admin)
    statement = WRITES[write].format(table=table, column=A_COLUMN[table])
    # Even in the most privileged context the app can claim.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(app_pool, role=service.AUDITOR_ROLE) as conn:
            await conn.execute(statement)
    assert await _counts(admin) == before


@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("table", AUDIT_TABLES)
@pytest.mark.parametrize("write", ["update", "delete", "truncate"])
async def test_triggers_refuse_changes_even_from_a_superuser(
    admin: asyncpg.Connection, table: str, write: str
) -> None:
    before = await _counts(admin)
    statement = WRITES[write].format(table=table, column=A_COLUMN[table])
    if write == "truncate":
        # Truncating all three at once (and, by CASCADE, whatever else references them, such as
        # evidence custody) sidesteps the foreign keys, so only the trigger stops it.
        statement = "TRUNCATE audit_checkpoints, audit_chain, audit_events CASCADE"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await admin.execute(statement)
    assert await _counts(admin) == before


@pytest.mark.usefixtures("sealed")
async def test_the_owner_cannot_change_rows_either(admin: asyncpg.Connection) -> None:
    before = await admin.fetch("SELECT * FROM audit_events ORDER BY id")
    async with admin.transaction():
        await admin.execute("SET LOCAL ROLE tipline_owner")
        await admin.execute("SELECT set_config('tipline.role', 'admin', true)")
        # FORCE ROW LEVEL SECURITY and no UPDATE/DELETE policy: the owner sees no row to change.
        assert await admin.execute("UPDATE audit_events SET detail = '{}'") == "UPDATE 0"
        assert await admin.execute("DELETE FROM audit_events") == "DELETE 0"
    assert await admin.fetch("SELECT * FROM audit_events ORDER BY id") == before


async def test_the_database_stamps_the_time_and_the_id(
    app_pool: db.Pool, admin: asyncpg.Connection
) -> None:
    async with db.transaction(app_pool, role="authenticator") as conn:
        await conn.execute(
            "INSERT INTO audit_events (action, occurred_at) VALUES ('login.failed', '2001-01-01')"
        )
    occurred = await admin.fetchval(
        "SELECT occurred_at > now() - interval '1 minute' FROM audit_events"
    )
    assert occurred is True, "a caller must not be able to backdate an audit event"

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="sequence"):
        async with db.transaction(app_pool, role="authenticator") as conn:
            await conn.execute(
                "INSERT INTO audit_events (id, action) OVERRIDING SYSTEM VALUE "
                "VALUES (1000000, 'login.failed')"
            )


@pytest.mark.parametrize(
    "column_values",
    [
        "(action) VALUES ('not an action')",
        "(action, detail) VALUES ('login.failed', '[1, 2]')",
        "(action, detail) VALUES ('login.failed', '{\"nested\": {\"a\": 1}}')",
        "(action, detail) VALUES ('login.failed', jsonb_build_object('blob', repeat('x', 3000)))",
        "(action, actor_role) VALUES ('login.failed', 'Robert''); DROP')",
    ],
)
async def test_schema_constrains_what_an_event_may_hold(
    app_pool: db.Pool, column_values: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        async with db.transaction(app_pool, role="authenticator") as conn:
            await conn.execute(f"INSERT INTO audit_events {column_values}")


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        (None, False),
        ("operative", False),
        ("officer", False),
        ("investigator", True),
        ("admin", True),
        ("auditor", True),
    ],
)
@pytest.mark.usefixtures("sealed")
@pytest.mark.parametrize("table", AUDIT_TABLES)
async def test_only_investigators_admins_and_the_auditor_read_the_log(
    app_pool: db.Pool, role: str | None, visible: bool, table: str
) -> None:
    async with db.transaction(app_pool, account_id=uuid4(), role=role) as conn:
        count = await conn.fetchval(f"SELECT count(*) FROM {table}")
    assert (count > 0) is visible


# A valid first link, so only the row-level security policy can refuse it.
FIRST_LINK = (
    "INSERT INTO audit_chain (position, event_id, entry_hash, chain_hash) "
    "VALUES (1, $1, sha256(''), sha256('\\x00'::bytea || decode(repeat('00', 32), 'hex') "
    "|| sha256('')))"
)


@pytest.mark.parametrize("role", ["investigator", "admin", "operative"])
async def test_only_the_auditor_context_may_seal(app_pool: db.Pool, role: str) -> None:
    [event_id] = await record_events(app_pool, 1)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with db.transaction(app_pool, role=role) as conn:
            await conn.execute(FIRST_LINK, event_id)
    async with db.transaction(app_pool, role=service.AUDITOR_ROLE) as conn:
        assert await conn.execute(FIRST_LINK, event_id) == "INSERT 0 1"


@pytest.mark.parametrize(
    ("position", "chain_hash", "message"),
    [
        (2, "sha256('\\x00'::bytea || sha256('') || sha256(''))", "does not follow"),
        (1, "sha256('')", "does not match"),
    ],
)
async def test_the_database_refuses_a_forked_or_gapped_link(
    app_pool: db.Pool, position: int, chain_hash: str, message: str
) -> None:
    await record_events(app_pool, 1)
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match=message):
        async with db.transaction(app_pool, role=service.AUDITOR_ROLE) as conn:
            await conn.execute(
                "INSERT INTO audit_chain (position, event_id, entry_hash, chain_hash) "
                f"SELECT {position}, id, sha256(''), {chain_hash} FROM audit_events"
            )


async def test_an_account_may_audit_only_in_its_own_name(app_pool: db.Pool) -> None:
    me, someone_else = uuid4(), uuid4()
    async with db.transaction(app_pool, account_id=me, role="operative") as conn:
        await service.record(conn, AuditAction.LOGIN_FAILED, actor_id=me, actor_role="operative")
    for actor_id, actor_role in ((someone_else, "operative"), (me, "investigator")):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction(app_pool, account_id=me, role="operative") as conn:
                await service.record(
                    conn, AuditAction.LOGIN_FAILED, actor_id=actor_id, actor_role=actor_role
                )
