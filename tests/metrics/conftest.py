from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.keys import public_key_b64
from server.settings import Settings
from tests.conftest import world_with
from tests.reports.conftest import Desk


class Scrape(msgspec.Struct):
    desk: Desk
    token: str


@pytest.fixture
def metrics_token(tmp_path: Path) -> tuple[Path, str]:
    token = secrets.token_hex(32)
    path = tmp_path / "metrics.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path, token


@pytest.fixture
async def scrape(settings: Settings, metrics_token: tuple[Path, str]) -> AsyncIterator[Scrape]:
    """A desk (investigator, two operatives) whose server has a metrics token; the sealer runs
    once at start-up and then waits an hour, so the unsealed backlog is exactly what tests add."""
    root_key = Ed25519PrivateKey.generate()
    path, token = metrics_token
    async with world_with(
        settings,
        root_public_key=public_key_b64(root_key),
        metrics_token_file=path,
        audit_seal_interval_s=3600.0,
    ) as world:
        world.root_key = root_key
        investigator = await world.first_investigator()
        operative = await world.invited(investigator, "operative")
        other = await world.invited(investigator, "operative")
        await world.publish_directory(investigator, [investigator])
        desk = Desk(
            world=world, investigator=investigator, operative=operative, other_operative=other
        )
        yield Scrape(desk=desk, token=token)
