"""Test harness: one real PostgreSQL per session, a fresh database per test, real HTTP.

The session starts an embedded PostgreSQL (or uses TIPLINE_TEST_DATABASE_URL, a superuser URL
on a server where `tipline_app` can log in the same way), migrates a template database once,
and clones it for every test: `CREATE DATABASE ... TEMPLATE` copies files, so isolation costs
milliseconds, not a migration run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar

from server import migrations
from server.app import create_app
from server.embedded import APP_ROLE, EmbeddedPostgres
from server.keyring import generate_key_file
from server.settings import Settings, load_settings
from tests.actors import World


class Cluster(msgspec.Struct, frozen=True):
    """How to reach the test PostgreSQL: `url(db)` as superuser, `url(db, APP_ROLE)` as the app."""

    base_url: str

    def url(self, database: str, user: str | None = None) -> str:
        parts = urlsplit(self.base_url)
        netloc = parts.netloc
        if user is not None:
            host = netloc.rpartition("@")[2]
            netloc = f"{user}@{host}"
        return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, ""))


class TestDatabase(msgspec.Struct, frozen=True):
    __test__ = False  # a fixture value, not a test class for pytest to collect
    name: str
    admin_url: str
    app_url: str


def private_dir(prefix: str) -> Path:
    """A folder outside pytest's tmp tree: pytest resets that tree to mode 0700 whenever another
    session starts, which would lock out the unprivileged user the embedded PostgreSQL runs as."""
    return Path(tempfile.mkdtemp(prefix=f"tipline-{prefix}-"))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    external = os.environ.get("TIPLINE_TEST_DATABASE_URL")
    if external:
        yield Cluster(base_url=external)
        return
    folder = private_dir("test-pg")
    embedded = EmbeddedPostgres(folder / "pgdata")
    try:
        yield Cluster(base_url=embedded.url("postgres"))
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(cluster: Cluster) -> AsyncIterator[str]:
    name = f"tipline_template_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(cluster.url(name))
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database(cluster: Cluster, template_database: str) -> AsyncIterator[TestDatabase]:
    name = f"tipline_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield TestDatabase(
            name=name, admin_url=cluster.url(name), app_url=cluster.url(name, APP_ROLE)
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def settings(database: TestDatabase, tmp_path: Path) -> Settings:
    settings = load_settings({}, database_url=database.app_url, data_dir=str(tmp_path))
    generate_key_file(settings.secret_key_path)
    return settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The real app on a loopback port, inside the test's event loop, so a test can reach into
    its state (the clock, the pool). uvicorn serves it here because it runs in-process; the
    end-to-end tests run `tipline serve` itself, under granian."""

    def __init__(self, settings: Settings, app: Litestar | None = None) -> None:
        self.settings = settings
        self.app = app or create_app(settings)
        config = uvicorn.Config(
            self.app,
            log_config=None,
            access_log=False,
            server_header=False,
            # As in production: the app alone decides whose forwarded headers count.
            proxy_headers=False,
            lifespan="on",
        )
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._socket.close()


@pytest.fixture
async def live_server(settings: Settings) -> AsyncIterator[LiveServer]:
    async with LiveServer(settings) as server:
        yield server


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def world(live_server: LiveServer) -> AsyncIterator[World]:
    world = World(live_server.app, live_server.base_url)
    yield world
    await world.close()


@asynccontextmanager
async def world_with(settings: Settings, **overrides: object) -> AsyncIterator[World]:
    """A live server and its world with some settings changed (short timeouts, low limits)."""
    async with LiveServer(msgspec.structs.replace(settings, **overrides)) as server:
        world = World(server.app, server.base_url)
        try:
            yield world
        finally:
            await world.close()
