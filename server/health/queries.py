from __future__ import annotations

from server.db import Connection
from server.sql import query


async def ping(conn: Connection) -> bool:
    return bool(await conn.fetchval(query("health.ping")))
