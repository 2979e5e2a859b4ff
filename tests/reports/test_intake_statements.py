"""The hot path's single-statement functions (0010_intake_statements.sql): they set their own
row-level security context, refuse to run inside anyone else's, leave none behind, and keep the
guarantees the multi-statement path had."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import httpx
import msgspec
import pytest

from clients.reference_client.reports import TipReport, seal_report
from server.settings import Settings
from tests.actors import World
from tests.conftest import TestDatabase, world_with
from tests.reports.conftest import Desk

AUTHENTICATE = "SELECT * FROM authenticate_session($1, $2, $3, $4)"


@pytest.fixture
async def app_connection(database: TestDatabase) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.app_url, server_settings={"search_path": "tipline"})
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_context_function_refuses_to_run_inside_another_context(
    app_connection: asyncpg.Connection,
) -> None:
    async with app_connection.transaction():
        await app_connection.execute(
            "SELECT enter_context($1, 'investigator', 'false')", str(uuid.uuid4())
        )
        with pytest.raises(asyncpg.InvalidTransactionStateError):
            await app_connection.fetch(AUTHENTICATE, bytes(32), "x", bytes(32), 60.0)


async def test_a_context_function_leaves_no_context_behind(
    app_connection: asyncpg.Connection,
) -> None:
    async with app_connection.transaction():
        rows = await app_connection.fetch(AUTHENTICATE, bytes(32), "x", bytes(32), 60.0)
        assert rows == []
        role = await app_connection.fetchval("SELECT current_app_role()")
        account = await app_connection.fetchval("SELECT current_account_id()")
    assert (role, account) == (None, None)


async def _last_seen(database: TestDatabase, token: str) -> datetime:
    conn = await asyncpg.connect(database.admin_url)
    try:
        seen: datetime = await conn.fetchval(
            "SELECT last_seen_at FROM tipline.sessions WHERE token_hash = $1",
            hashlib.sha256(token.encode()).digest(),
        )
        return seen
    finally:
        await conn.close()


async def test_a_replayed_proof_does_not_keep_a_session_alive(
    settings: Settings, database: TestDatabase
) -> None:
    # A 2 s idle timeout: the timer moves once it is 0.1 s old (a twentieth, 0010).
    async with world_with(settings, session_idle_investigator_s=2) as world:
        investigator = await world.first_investigator()
        token = investigator.token().access_token
        proof = investigator.client.proof("GET", "/v1/me", access_token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        async with httpx.AsyncClient(base_url=world.base_url) as http:
            await asyncio.sleep(0.3)
            assert (await http.get("/v1/me", headers=headers)).status_code == 200
            touched = await _last_seen(database, token)
            await asyncio.sleep(0.3)
            assert (await http.get("/v1/me", headers=headers)).status_code == 401
            assert await _last_seen(database, token) == touched
        fresh = await investigator.client.call("GET", "/v1/me", token)
        assert fresh.status_code == 200
        assert await _last_seen(database, token) > touched


async def test_a_busy_session_moves_its_idle_timer_only_once_in_a_while(
    world: World, database: TestDatabase
) -> None:
    investigator = await world.first_investigator()
    token = investigator.token().access_token
    assert (await investigator.client.call("GET", "/v1/me", token)).status_code == 200
    first = await _last_seen(database, token)
    for _ in range(3):
        assert (await investigator.client.call("GET", "/v1/me", token)).status_code == 200
    # The default 900 s idle timeout moves the timer at most every 45 s.
    assert await _last_seen(database, token) == first


async def test_a_directory_version_that_never_existed_gets_the_current_one(desk: Desk) -> None:
    assert desk.world.directory is not None
    future = msgspec.structs.replace(desk.world.directory, version=7)
    submission = seal_report(desk.operative.device, future, TipReport(text="from the future"))
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(submission)
    )
    assert response.status_code == 409
    assert response.json()["current_version"] == desk.world.directory.version


async def test_a_report_is_stored_with_its_audit_row_and_event_or_not_at_all(
    desk: Desk, database: TestDatabase
) -> None:
    assert desk.world.directory is not None
    submission = seal_report(
        desk.operative.device, desk.world.directory, TipReport(text=secrets.token_hex(8))
    )
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(submission)
    )
    assert response.status_code == 201
    conn = await asyncpg.connect(database.admin_url)
    try:
        subject = str(submission.report_id)
        audited = await conn.fetchval(
            "SELECT count(*) FROM tipline.audit_events"
            " WHERE action = 'report.received' AND subject_id = $1 AND actor_role = 'operative'",
            subject,
        )
        announced = await conn.fetchval(
            "SELECT count(*) FROM tipline.events"
            " WHERE kind = 'report.received' AND report_id = $1"
            " AND audience_role = 'investigator'",
            submission.report_id,
        )
    finally:
        await conn.close()
    assert (audited, announced) == (1, 1)
