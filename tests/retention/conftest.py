"""An installation with reports, evidence and leads made over real HTTP by the reference
client, and a retention context wired to the live server's own storage, for the job's tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from litestar.di import Provide

from clients.reference_client.envelope import AttachmentDigest
from clients.reference_client.evidence import EvidenceClient, seal_file
from clients.reference_client.reports import TipReport, seal_report, submit
from server.evidence.service import EvidenceContext
from server.retention.service import RetentionContext
from server.settings import Settings
from tests.conftest import TestDatabase
from tests.leads.conftest import Room, open_room


class Filed(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    attachment_id: uuid.UUID
    # The age ciphertext as the phone made it (what the server stores).
    ciphertext: bytes


class Site(msgspec.Struct):
    room: Room
    workdir: Path

    @property
    def evidence(self) -> EvidenceContext:
        provider = self.room.world.app.dependencies["evidence"]
        assert isinstance(provider, Provide)
        context: EvidenceContext = provider.dependency()
        return context

    @property
    def retention(self) -> RetentionContext:
        return RetentionContext(self.room.world.identity, self.evidence)

    async def file_report(self, text: str, evidence: bytes) -> Filed:
        """An operative uploads encrypted evidence and submits a report citing it."""
        operative = self.room.operative
        attachment_id = uuid.uuid4()
        plain = self.workdir / f"{attachment_id}.plain"
        plain.write_bytes(evidence)
        sealed = seal_file(
            plain,
            self.workdir / f"{attachment_id}.age",
            self.room.directory.investigator_recipients(),
            operative.device,
            attachment_id,
        )
        async with EvidenceClient(operative.client) as uploads:
            await uploads.upload(operative.token(), sealed)
        digest = AttachmentDigest(
            attachment_id=attachment_id,
            plaintext_sha256=sealed.plaintext_sha256,
            ciphertext_sha256=sealed.ciphertext_sha256,
        )
        submission = seal_report(
            operative.device, self.room.directory, TipReport(text=text), attachments=[digest]
        )
        receipt = await submit(operative.client, operative.token(), submission)
        return Filed(
            report_id=receipt.report_id,
            attachment_id=attachment_id,
            ciphertext=Path(sealed.ciphertext_path).read_bytes(),
        )

    async def triage(self, report_id: uuid.UUID, *statuses: str) -> None:
        for status in statuses:
            response = await self.room.call(
                self.room.second, "PATCH", f"/v1/reports/{report_id}", {"status": status}
            )
            assert response.status_code == 200, response.text

    async def lead_from(self, report_ids: list[uuid.UUID]) -> uuid.UUID:
        from clients.reference_client import leads

        return await leads.create_lead(
            self.room.lead.client,
            self.room.lead.token(),
            self.room.directory,
            "lead text",
            report_ids,
        )

    async def close_lead(self, lead_id: uuid.UUID) -> None:
        response = await self.room.call(self.room.lead, "POST", f"/v1/leads/{lead_id}/close")
        assert response.status_code in (200, 204), response.text

    async def changed_at(self, table: str, row_id: uuid.UUID) -> datetime:
        assert table in {"reports", "leads"}
        async with self.room.superuser() as conn:
            value: datetime = await conn.fetchval(
                f"SELECT updated_at FROM {table} WHERE id = $1", row_id
            )
        return value


@pytest.fixture
async def site(settings: Settings, database: TestDatabase, tmp_path: Path) -> AsyncIterator[Site]:
    async with open_room(settings, database, officers=1) as room:
        yield Site(room=room, workdir=tmp_path)
