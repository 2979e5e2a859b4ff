"""`tipline retention hold|release|run` as the operator runs them (a real subprocess)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import msgspec

from server.retention.service import RetentionRun
from server.settings import Settings
from tests.conftest import TestDatabase
from tests.retention.conftest import Site


async def tipline(env: dict[str, str], *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_holds_are_placed_and_lifted_from_the_command_line_and_audited(
    site: Site, settings: Settings, database: TestDatabase
) -> None:
    filed = await site.file_report("kept for court", b"v" * 100)
    await site.triage(filed.report_id, "in_review", "verified")
    lead_id = await site.lead_from([filed.report_id])
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database.app_url,
        "TIPLINE_DATA_DIR": str(settings.data_dir),
        "TIPLINE_EVIDENCE_DIR": str(settings.evidence_path),
    }
    assert await tipline(env, "retention", "hold", str(lead_id)) == (
        0,
        f"lead {lead_id}: placed on hold\n",
    )
    code, said = await tipline(env, "retention", "hold", str(lead_id))
    assert (code, said.strip()) == (0, f"lead {lead_id}: already on hold")
    async with site.room.superuser() as conn:
        assert await conn.fetchval("SELECT count(*) FROM lead_holds WHERE lead_id = $1", lead_id)
    code, said = await tipline(env, "retention", "release", str(lead_id))
    assert (code, said.strip()) == (0, f"lead {lead_id}: hold lifted")
    code, said = await tipline(env, "retention", "hold", str(uuid.uuid4()))
    assert code == 2
    assert "no lead" in said
    async with site.room.superuser() as conn:
        actions = [
            r[0]
            for r in await conn.fetch(
                "SELECT action FROM audit_events WHERE subject_id = $1 ORDER BY id", str(lead_id)
            )
        ]
    assert actions.count("lead.hold_placed") == 1
    assert actions.count("lead.hold_released") == 1

    code, said = await tipline(env, "retention", "run")
    assert code == 0, said
    run = msgspec.json.decode(said.strip().splitlines()[-1], type=RetentionRun)
    assert (run.reports_shredded, run.attachments_shredded) == (0, 0)
