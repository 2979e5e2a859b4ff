"""The connection pool, and the one way to open a request's transaction with its RLS context.

Row-level security policies read `tipline.account_id` and `tipline.role` from the transaction
(`set_config(..., is_local => true)`), so a context can never leak into the next request that
borrows the same pooled connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
        server_settings={"search_path": SEARCH_PATH, "application_name": "tipline"},
    )
    return pool


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
