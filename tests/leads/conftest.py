"""A desk for lead tests: two investigators (the two-person rule needs two), four officers, an
operative, and a key directory signed by the test's root key that names the team."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client import leads
from clients.reference_client.keys import Directory, public_key_b64
from clients.reference_client.reports import TipReport, seal_report, submit
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import TestDatabase, world_with

LEAD_TEXT = (
    "The building is located next to the street market. Several guards usually arrive "
    "before evening and the owner often takes money from customers very quickly.\n\n"
    "Minors are observed upstairs; individuals at the entrance are guards of the manager. "
    "A large vehicle is nearby approximately every night."
)


def uid(actor: Actor) -> uuid.UUID:
    assert actor.account_id is not None
    return actor.account_id


class Room(msgspec.Struct):
    world: World
    database: TestDatabase
    lead: Actor  # the investigator who proposes and shares
    second: Actor  # the second investigator who approves
    officers: list[Actor]
    operative: Actor

    @property
    def directory(self) -> Directory:
        assert self.world.directory is not None
        return self.world.directory

    async def call(self, who: Actor, method: str, path: str, json: Any = None) -> httpx.Response:
        return await who.client.call(method, path, who.token(), json=json)

    async def vet(self, officer: Actor) -> None:
        review_due = (datetime.now(UTC).date() + timedelta(days=90)).isoformat()
        assert officer.account_id is not None
        await leads.propose_officer(
            self.lead.client,
            self.lead.token(),
            officer.account_id,
            "Anti-trafficking",
            "Captain",
            review_due,
        )
        await leads.approve_officer(self.second.client, self.second.token(), officer.account_id)

    async def verified_report(self, text: str = "a tip") -> uuid.UUID:
        submission = seal_report(self.operative.device, self.directory, TipReport(text=text))
        receipt = await submit(self.operative.client, self.operative.token(), submission)
        for status in ("in_review", "verified"):
            response = await self.call(
                self.second, "PATCH", f"/v1/reports/{receipt.report_id}", {"status": status}
            )
            assert response.status_code == 200, response.text
        return receipt.report_id

    async def new_lead(self, text: str = LEAD_TEXT) -> uuid.UUID:
        report = await self.verified_report()
        return await leads.create_lead(
            self.lead.client, self.lead.token(), self.directory, text, [report]
        )

    async def share(
        self,
        lead_id: uuid.UUID,
        officer: Actor,
        *,
        not_before: datetime | None = None,
        hours: float = 2.0,
        approve: bool = True,
        others: list[leads.SharedCopy] | None = None,
        text: str = LEAD_TEXT,
    ) -> leads.SharedCopy:
        assert officer.account_id is not None
        info, copy = await leads.share_lead(
            self.lead.client,
            self.lead.token(),
            self.directory,
            lead_id,
            officer.account_id,
            text,
            not_before=not_before or datetime.now(UTC) - timedelta(minutes=1),
            hours=hours,
            others=others or [],
        )
        if approve and info.state == "pending":
            await leads.approve_share(self.second.client, self.second.token(), info.id)
        return copy

    @asynccontextmanager
    async def superuser(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(
            self.database.admin_url, server_settings={"search_path": "tipline"}
        )
        try:
            yield conn
        finally:
            await conn.close()

    async def audit_actions(self) -> list[str]:
        async with self.superuser() as conn:
            return [r[0] for r in await conn.fetch("SELECT action FROM audit_events ORDER BY id")]


@asynccontextmanager
async def open_room(
    settings: Settings, database: TestDatabase, *, officers: int = 4, **overrides: object
) -> AsyncIterator[Room]:
    root_key = Ed25519PrivateKey.generate()
    async with world_with(settings, root_public_key=public_key_b64(root_key), **overrides) as world:
        world.root_key = root_key
        lead = await world.first_investigator()
        second = await world.invited(lead, "investigator")
        team = [await world.invited(lead, "officer") for _ in range(officers)]
        operative = await world.invited(lead, "operative")
        await world.publish_directory(lead, [lead, second, *team])
        yield Room(
            world=world,
            database=database,
            lead=lead,
            second=second,
            officers=team,
            operative=operative,
        )


@pytest.fixture
async def room(settings: Settings, database: TestDatabase) -> AsyncIterator[Room]:
    async with open_room(settings, database) as room:
        yield room
