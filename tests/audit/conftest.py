from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server import db
from server.audit import service
from server.audit.actions import AuditAction
from server.audit.schemas import Checkpoint, VerifyResult
from tests.conftest import TestDatabase


@pytest.fixture
async def app_pool(database: TestDatabase) -> AsyncIterator[db.Pool]:
    pool: db.Pool = await asyncpg.create_pool(
        database.app_url,
        min_size=1,
        max_size=20,
        server_settings={"search_path": db.SEARCH_PATH},
    )
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def admin(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection: the attacker who holds the whole database."""
    conn: asyncpg.Connection = await asyncpg.connect(
        database.admin_url, server_settings={"search_path": db.SEARCH_PATH}
    )
    try:
        yield conn
    finally:
        await conn.close()


async def record_events(pool: db.Pool, count: int, *, role: str = "operative") -> list[int]:
    ids = []
    for i in range(count):
        async with db.transaction(pool, role=role) as conn:
            ids.append(
                await service.record(
                    conn,
                    AuditAction.REPORT_RECEIVED,
                    actor_id=None,
                    actor_role=role,
                    subject_type="report",
                    subject_id=f"r-{i}",
                    detail={"n": i, "size": 2048, "resumed": False},
                )
            )
    return ids


async def verify(
    pool: db.Pool,
    *,
    public_key: Ed25519PublicKey | None = None,
    trusted: Sequence[Checkpoint] = (),
) -> VerifyResult:
    async with db.transaction(pool, role=service.AUDITOR_ROLE) as conn:
        return await service.verify_chain(conn, public_key=public_key, trusted=trusted)
