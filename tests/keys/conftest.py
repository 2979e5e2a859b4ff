from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar, Router

from clients.reference_client.keys import DirectoryEntry, public_key_b64
from server.identity.guards import authorize
from server.keys.routes import KeysController
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import world_with


def ensure_keys_routes(app: Litestar) -> None:
    """Mounts /v1/keys behind the authenticated guard if create_app does not list it yet."""
    if "/v1/keys" not in {route.path for route in app.routes}:
        app.register(Router(path="/", guards=[authorize], route_handlers=[KeysController]))


@pytest.fixture
def root_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
async def keyed(settings: Settings, root_key: Ed25519PrivateKey) -> AsyncIterator[World]:
    """A live server whose installation trusts `root_key`."""
    async with world_with(settings, root_public_key=public_key_b64(root_key)) as world:
        ensure_keys_routes(world.app)
        yield world


@pytest.fixture
async def unkeyed(world: World) -> World:
    """A live server with no root key configured."""
    ensure_keys_routes(world.app)
    return world


def entry_for(actor: Actor, **changes: Any) -> DirectoryEntry:
    assert actor.account_id is not None
    entry = DirectoryEntry(
        account_id=actor.account_id,
        age_recipient=str(actor.age_identity.to_public()),
        device_keys=[actor.device.public_jwk()],
        role="officer" if actor.role == "officer" else "investigator",
    )
    return msgspec.structs.replace(entry, **changes)
