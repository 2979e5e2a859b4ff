"""`create_app(settings)`: the whole HTTP surface on one screen.

Two routers. The public one holds only what must work without a session: health, enrolment
and login. Everything else sits behind the authenticated router, whose guard refuses any route
that declares no permission and authenticates every request (DPoP-bound session).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from server import db
from server.analysis.routes import AnalysisController
from server.asgi import edge_middleware
from server.audit.routes import AuditController
from server.audit.sealer import Sealer
from server.events.hub import EventHub
from server.events.routes import EventsController
from server.evidence.routes import AttachmentController, UploadController, tus_resumable
from server.evidence.service import EvidenceContext
from server.evidence.service import sweep_expired as sweep_expired_uploads
from server.evidence.storage import storage_from_settings
from server.health.routes import HealthController
from server.identity.guards import authorize, current_principal
from server.identity.routes import (
    AccountController,
    InviteController,
    LoginController,
    SessionController,
)
from server.identity.service import IdentityContext, sweep_expired
from server.keyring import load_keyring
from server.keys.routes import KeysController
from server.keys.service import DirectoryCache, root_public_key
from server.leads.routes import LeadController, ShareController
from server.messages.routes import MessageController
from server.metrics.routes import METRICS_STATE_KEY, TOKEN_STATE_KEY, MetricsController
from server.metrics.service import Metrics, load_token
from server.officers.routes import OfficerController
from server.problems import EXCEPTION_HANDLERS
from server.reports.routes import ReportController
from server.retention.service import RetentionContext
from server.retention.service import run_scheduled as run_retention
from server.settings import Settings
from server.tasks import Periodic

API_VERSION = "1"


def public_router() -> Router:
    # MetricsController checks its own bearer token (a scraper has no session or device key).
    return Router(path="/", route_handlers=[HealthController, LoginController, MetricsController])


def authenticated_router() -> Router:
    return Router(
        path="/",
        guards=[authorize],
        route_handlers=[
            SessionController,
            InviteController,
            AccountController,
            KeysController,
            ReportController,
            UploadController,
            AttachmentController,
            MessageController,
            EventsController,
            AuditController,
            OfficerController,
            LeadController,
            ShareController,
            AnalysisController,
        ],
    )


def create_app(settings: Settings) -> Litestar:
    if settings.database_url is None:
        raise ValueError("create_app needs settings.database_url; `tipline serve` sets it")
    database_url = settings.database_url
    # Loaded now, so a missing or unsafe key stops start-up rather than the first login.
    identity = IdentityContext(settings, load_keyring(settings.secret_key_path))
    if settings.root_public_key is not None:
        root_public_key(settings.root_public_key)  # a malformed root key stops start-up too
    directories = DirectoryCache()
    evidence = EvidenceContext(settings, storage_from_settings(settings))
    retention = RetentionContext(identity, evidence)
    metrics = Metrics()
    metrics_token = load_token(settings.metrics_token_file) if settings.metrics_token_file else None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.pool = await db.create_pool(settings, database_url)
        # Every replica runs one; an advisory lock lets only one seal at a time.
        sealer = Sealer(
            app.state.pool,
            interval_s=settings.audit_seal_interval_s,
            signing_key=identity.keyring.audit_signing_key,
        )
        sweeper = Periodic(
            "identity-sweeper",
            settings.housekeeping_interval_s,
            functools.partial(sweep_expired, identity, app.state.pool),
        )
        # One LISTEN connection per process fans notifications out to its event streams.
        events = EventHub(
            database_url,
            max_pending=settings.events_max_pending,
            heartbeat_s=settings.events_heartbeat_s,
            replay_batch=settings.events_replay_batch,
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        app.state.events = events
        # tus expiration: abandoned uploads and their stored bytes are deleted.
        evidence_sweeper = Periodic(
            "evidence-sweeper",
            settings.evidence_sweep_interval_s,
            functools.partial(sweep_expired_uploads, evidence, app.state.pool),
        )
        # Crypto-shredding on schedule; an advisory lock makes one replica lead each run.
        retention_job = Periodic(
            "retention",
            settings.retention_interval_s,
            functools.partial(run_retention, retention, app.state.pool),
        )
        sealer.start()
        sweeper.start()
        evidence_sweeper.start()
        retention_job.start()
        await events.start()
        try:
            yield
        finally:
            await events.stop()
            await retention_job.stop()
            await evidence_sweeper.stop()
            await evidence.storage.close()
            await sweeper.stop()
            await sealer.stop()
            await app.state.pool.close()

    def provide_pool(state: State) -> db.Pool:
        pool: db.Pool = state.pool
        return pool

    app = Litestar(
        route_handlers=[public_router(), authenticated_router()],
        lifespan=[lifespan],
        state=State(
            {"identity": identity, METRICS_STATE_KEY: metrics, TOKEN_STATE_KEY: metrics_token}
        ),
        dependencies={
            "pool": Provide(provide_pool, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
            "identity": Provide(lambda: identity, sync_to_thread=False, use_cache=True),
            "directories": Provide(lambda: directories, sync_to_thread=False, use_cache=True),
            "evidence": Provide(lambda: evidence, sync_to_thread=False, use_cache=True),
            "principal": Provide(current_principal, sync_to_thread=False),
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
    # tus: Tus-Resumable on every /v1/uploads response, framework errors included.
    app.asgi_handler = tus_resumable(app.asgi_handler)
    app.asgi_handler = edge_middleware(app.asgi_handler, observe=metrics.observe_request)
    return app
