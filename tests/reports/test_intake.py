"""Intake: an operative's report arrives once, provably from that device, readable only by
investigators; the server holds ciphertext it cannot read."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid

import asyncpg
import msgspec

from clients.reference_client.envelope import receipt_hash, sha256_hex
from clients.reference_client.reports import Submission, TipReport, open_report, seal_report, submit
from tests.conftest import TestDatabase
from tests.reports.conftest import Desk


def sealed(desk: Desk, text: str) -> Submission:
    assert desk.world.directory is not None
    return seal_report(desk.operative.device, desk.world.directory, TipReport(text=text))


async def count(database: TestDatabase, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(database.admin_url)
    try:
        value: int = await conn.fetchval(sql, *args)
    finally:
        await conn.close()
    return value


async def test_a_report_reaches_the_investigator_exactly_as_written(
    desk: Desk, database: TestDatabase
) -> None:
    secret_text = f"Karaoke bar on street 51 keeps girls upstairs {secrets.token_hex(8)}"
    submission = seal_report(
        desk.operative.device,
        desk.world.directory,  # type: ignore[arg-type]
        TipReport(text=secret_text, location="street 51", observed_at="2026-11-29T22:00:00Z"),
    )
    receipt = await submit(desk.operative.client, desk.operative.token(), submission)
    ciphertext = base64.b64decode(submission.ciphertext)
    assert receipt.receipt == receipt_hash(
        submission.report_id, receipt.received_at, sha256_hex(ciphertext), submission.signature
    )

    detail = await desk.investigator.client.call(
        "GET", f"/v1/reports/{submission.report_id}", desk.investigator.token()
    )
    assert detail.status_code == 200
    opened = open_report(detail.json(), str(desk.investigator.age_identity))
    assert opened.text == secret_text
    assert opened.location == "street 51"

    # Nothing in the database holds the plaintext.
    conn = await asyncpg.connect(database.admin_url)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'tipline'")
        for table in tables:
            dump = await conn.fetchval(
                f"SELECT coalesce(string_agg(t::text, ' '), '') FROM tipline.{table[0]} t"
            )
            assert secret_text not in dump, table[0]
            assert "street 51" not in dump, table[0]
    finally:
        await conn.close()


async def test_retries_give_the_same_receipt_and_a_changed_body_conflicts(
    desk: Desk, database: TestDatabase
) -> None:
    submission = sealed(desk, "first")
    client, token = desk.operative.client, desk.operative.token()
    first = await client.call("POST", "/v1/reports", token, json=msgspec.to_builtins(submission))
    again = await client.call("POST", "/v1/reports", token, json=msgspec.to_builtins(submission))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()

    other = sealed(desk, "something else")
    changed = msgspec.structs.replace(other, report_id=submission.report_id)
    response = await client.call("POST", "/v1/reports", token, json=msgspec.to_builtins(changed))
    assert response.status_code == 409
    assert await count(database, "SELECT count(*) FROM tipline.reports") == 1


async def test_twenty_concurrent_copies_store_exactly_one_report(
    desk: Desk, database: TestDatabase
) -> None:
    submission = sealed(desk, "sent twenty times over a bad network")
    body = msgspec.to_builtins(submission)
    responses = await asyncio.gather(
        *(
            desk.operative.client.call("POST", "/v1/reports", desk.operative.token(), json=body)
            for _ in range(20)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert statuses.count(200) == 19
    assert len({r.json()["receipt"] for r in responses}) == 1
    assert await count(database, "SELECT count(*) FROM tipline.reports") == 1
    assert (
        await count(
            database, "SELECT count(*) FROM tipline.audit_events WHERE action = 'report.received'"
        )
        == 1
    )


async def test_tampered_ciphertext_or_signature_is_refused_and_audited(
    desk: Desk, database: TestDatabase
) -> None:
    submission = sealed(desk, "will be tampered with")
    ciphertext = bytearray(base64.b64decode(submission.ciphertext))
    ciphertext[-1] ^= 1
    tampered_ciphertext = msgspec.structs.replace(
        submission, ciphertext=base64.b64encode(bytes(ciphertext)).decode()
    )
    signature = bytearray(base64.urlsafe_b64decode(submission.signature + "=="))
    signature[5] ^= 1
    tampered_signature = msgspec.structs.replace(
        submission, signature=base64.urlsafe_b64encode(bytes(signature)).decode().rstrip("=")
    )
    for bad in (tampered_ciphertext, tampered_signature):
        response = await desk.operative.client.call(
            "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(bad)
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
    assert await count(database, "SELECT count(*) FROM tipline.reports") == 0
    assert (
        await count(
            database, "SELECT count(*) FROM tipline.audit_events WHERE action = 'report.refused'"
        )
        == 2
    )


async def test_a_report_not_encrypted_to_every_investigator_is_refused(desk: Desk) -> None:
    second = await desk.world.invited(desk.investigator, "investigator")
    directory = await desk.world.publish_directory(desk.investigator, [desk.investigator, second])
    narrow = msgspec.structs.replace(directory, entries=directory.entries[:1])
    submission = seal_report(desk.operative.device, narrow, TipReport(text="only one can read"))
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(submission)
    )
    assert response.status_code == 422


async def test_an_outdated_directory_gets_409_with_the_current_version(desk: Desk) -> None:
    outdated = sealed(desk, "encrypted to version 1")
    await desk.world.publish_directory(desk.investigator, [desk.investigator])
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(outdated)
    )
    assert response.status_code == 409
    assert response.json()["current_version"] == 2
    fresh = sealed(desk, "encrypted to version 2")
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=msgspec.to_builtins(fresh)
    )
    assert response.status_code == 201


async def test_unknown_fields_and_server_owned_fields_are_refused(desk: Desk) -> None:
    body = msgspec.to_builtins(sealed(desk, "x"))
    for extra in ({"status": "verified"}, {"operative_id": str(uuid.uuid4())}):
        response = await desk.operative.client.call(
            "POST", "/v1/reports", desk.operative.token(), json={**body, **extra}
        )
        assert response.status_code == 422


async def test_only_operatives_submit(desk: Desk) -> None:
    body = msgspec.to_builtins(sealed(desk, "x"))
    response = await desk.investigator.client.call(
        "POST", "/v1/reports", desk.investigator.token(), json=body
    )
    assert response.status_code == 403


async def test_an_id_taken_by_another_operative_is_a_conflict_not_a_crash(desk: Desk) -> None:
    first = sealed(desk, "mine")
    await submit(desk.operative.client, desk.operative.token(), first)
    assert desk.world.directory is not None
    theirs = seal_report(
        desk.other_operative.device,
        desk.world.directory,
        TipReport(text="theirs"),
        report_id=first.report_id,
    )
    response = await desk.other_operative.client.call(
        "POST", "/v1/reports", desk.other_operative.token(), json=msgspec.to_builtins(theirs)
    )
    assert response.status_code == 409
