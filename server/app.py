"""`create_app(settings)`: the whole HTTP surface on one screen.

Routers are listed by audience; nothing registers routes implicitly. A route is public only if
it sits in the public router, and every other router will carry its role guard.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from server import db
from server.asgi import edge_middleware
from server.health.routes import HealthController
from server.problems import EXCEPTION_HANDLERS
from server.settings import Settings

API_VERSION = "1"


def _public_router() -> Router:
    return Router(path="/", route_handlers=[HealthController])


def create_app(settings: Settings) -> Litestar:
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url; `tipline serve` sets it")
    database_url = settings.database_url

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await db.create_pool(settings, database_url)
        try:
            yield
        finally:
            await app.state.pool.close()

    def provide_pool(state: State) -> db.Pool:
        pool: db.Pool = state.pool
        return pool

    app = Litestar(
        route_handlers=[_public_router()],
        lifespan=[lifespan],
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        request_max_body_size=settings.max_request_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Tipline",
            version=API_VERSION,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        debug=False,
        # Logging is configured once by the CLI (server.logs); Litestar must not add its own.
        logging_config=None,
    )
    # Outermost, so even a request that matches no route gets an id and an access-log line.
    app.asgi_handler = edge_middleware(app.asgi_handler)
    return app
