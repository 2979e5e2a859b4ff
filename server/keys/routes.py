"""`/v1/keys`: the signed key directory. Decode, call the service, encode; no rules here."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.di import NamedDependency

from server.db import Pool
from server.identity.guards import requires
from server.identity.permissions import Permission
from server.identity.principal import Principal
from server.keys import service
from server.keys.schemas import MAX_PUBLISH_BODY_BYTES, SignedDirectory
from server.settings import Settings
from server.wire import read_json

AnyRequest = Request[Any, Any, State]


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]  # noqa: RUF012  (Litestar reads this class attribute)

    @get("/", opt=requires(Permission.KEYS_READ), summary="The current root-signed key directory")
    async def current(
        self, principal: NamedDependency[Principal], pool: NamedDependency[Pool]
    ) -> SignedDirectory:
        return await service.signed_current(pool, principal)

    @put(
        "/",
        opt=requires(Permission.KEYS_PUBLISH),
        # A full directory (200 entries) is larger than the installation-wide body limit.
        request_max_body_size=MAX_PUBLISH_BODY_BYTES,
        summary="Publish a newer directory signed by the organisation root key",
    )
    async def publish(
        self,
        request: AnyRequest,
        principal: NamedDependency[Principal],
        pool: NamedDependency[Pool],
        settings: NamedDependency[Settings],
    ) -> SignedDirectory:
        body = await read_json(request, SignedDirectory)
        return await service.publish(pool, principal, settings.root_public_key, body)
