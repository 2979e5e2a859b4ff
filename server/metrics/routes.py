"""`GET /metrics`: public to the session guard, closed by its own bearer token.

A scraper has no account, device key or DPoP proof, so the route sits on the public router and
checks a static token from `TIPLINE_METRICS_TOKEN_FILE` instead. Without that setting the route
answers 404, as if it did not exist; the TLS proxy also refuses it from outside (deploy/).
"""

from __future__ import annotations

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency

from server.db import Pool
from server.errors import NotFound, Unauthenticated
from server.metrics.service import CONTENT_TYPE, Metrics, token_matches

METRICS_STATE_KEY = "metrics"
TOKEN_STATE_KEY = "metrics_token"  # noqa: S105  (the state key's name, not a secret)
_BEARER = "bearer "


class MetricsController(Controller):
    path = "/"
    include_in_schema = False

    @get("/metrics", summary="Prometheus metrics (bearer token)")
    async def metrics(
        self, request: Request[object, object, State], pool: NamedDependency[Pool]
    ) -> Response[bytes]:
        expected: bytes | None = request.app.state.get(TOKEN_STATE_KEY)
        if expected is None:
            raise NotFound()
        header = request.headers.get("authorization", "")
        presented = header[len(_BEARER) :] if header.lower().startswith(_BEARER) else ""
        if not token_matches(expected, presented.strip().encode()):
            raise Unauthenticated(headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        metrics: Metrics = request.app.state[METRICS_STATE_KEY]
        return Response(await metrics.render(pool), media_type=CONTENT_TYPE)
