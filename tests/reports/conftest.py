from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.keys import public_key_b64
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import world_with


class Desk(msgspec.Struct):
    """An installation with a signed key directory, an investigator and two operatives."""

    world: World
    investigator: Actor
    operative: Actor
    other_operative: Actor


@pytest.fixture
async def desk(settings: Settings) -> AsyncIterator[Desk]:
    root_key = Ed25519PrivateKey.generate()
    async with world_with(settings, root_public_key=public_key_b64(root_key)) as world:
        world.root_key = root_key
        investigator = await world.first_investigator()
        operative = await world.invited(investigator, "operative")
        other = await world.invited(investigator, "operative")
        await world.publish_directory(investigator, [investigator])
        yield Desk(
            world=world, investigator=investigator, operative=operative, other_operative=other
        )
