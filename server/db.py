"""The connection pool, and the one way to open a request's transaction with its RLS context.

Row-level security policies read `tipline.account_id` and `tipline.role` from the transaction
(`set_config(..., is_local => true)`), so a context can never leak into the next request that
borrows the same pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeAlias
from uuid import UUID

import asyncpg

from server.settings import Settings
from server.sql import query

Connection: TypeAlias = asyncpg.Connection
Pool: TypeAlias = asyncpg.Pool

SEARCH_PATH = "tipline"


async def create_pool(settings: Settings, dsn: str) -> Pool:
    pool: Pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        timeout=settings.db_connect_timeout_s,
        command_timeout=settings.db_command_timeout_s,
        max_queries=settings.db_max_queries,
        max_inactive_connection_lifetime=settings.db_max_inactive_connection_lifetime_s,
        server_settings={
            "search_path": SEARCH_PATH,
            "application_name": "tipline",
            # A request reads one page through an index that stops after it; starting parallel
            # workers for that cost 7 ms of a 8 ms queue query at a million reports.
            "max_parallel_workers_per_gather": "0",
        },
        reset=_keep_session,
    )
    return pool


async def _keep_session(conn: Connection) -> None:
    """Replaces asyncpg's reset query on release (RESET ALL, UNLISTEN *, CLOSE ALL, advisory
    unlock): one round trip per request that undoes nothing this service ever does.

    asyncpg still rolls back an open transaction first. Everything a request sets is
    transaction-local (`set_config(..., true)`, `pg_advisory_xact_lock`); LISTEN runs on the
    event hub's own connection, and session-level locks only on the migrator's.
    """


def self_contained(pool: Pool) -> AbstractAsyncContextManager[Connection]:
    """A connection for one call to a SQL function that runs in its own implicit transaction
    and enters its own RLS context through `enter_context` (0010_intake_statements.sql): the
    per-request hot path, in one round trip instead of four."""
    acquired: AbstractAsyncContextManager[Connection] = pool.acquire()
    return acquired


@asynccontextmanager
async def transaction(
    pool: Pool, *, account_id: UUID | None = None, role: str | None = None, duress: bool = False
) -> AsyncIterator[Connection]:
    """A transaction whose RLS context is this account (or nobody, for anonymous requests).

    `duress` marks a session opened with a duress password: the policies give it nothing real
    to read and nothing to change.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            query("context.set_account"),
            str(account_id) if account_id else "",
            role or "",
            "true" if duress else "false",
        )
        yield conn
