from __future__ import annotations

import msgspec

from server.db import Connection
from server.sql import query


class AuditBacklog(msgspec.Struct, frozen=True):
    unsealed: int
    oldest_age_s: float


async def report_queue_depth(conn: Connection) -> int:
    return int(await conn.fetchval(query("metrics.report_queue_depth")))


async def audit_backlog(conn: Connection) -> AuditBacklog:
    row = await conn.fetchrow(query("metrics.audit_backlog"))
    return AuditBacklog(unsealed=int(row["unsealed"]), oldest_age_s=float(row["oldest_age_s"]))


async def login_failures(conn: Connection, actions: list[str]) -> dict[str, int]:
    rows = await conn.fetch(query("metrics.login_failures"), actions)
    return {str(row["action"]): int(row["total"]) for row in rows}
