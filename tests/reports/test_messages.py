"""Two-way messages: an investigator's reply reaches the operative (and the team), an
operative's follow-up reaches the investigators, and nobody else can read a thread."""

from __future__ import annotations

import uuid

from clients.reference_client.reports import (
    TipReport,
    open_message,
    seal_message,
    seal_report,
    submit,
)
from tests.actors import Actor
from tests.reports.conftest import Desk


async def file_report(desk: Desk, author: Actor) -> uuid.UUID:
    assert desk.world.directory is not None
    submission = seal_report(author.device, desk.world.directory, TipReport(text="tip"))
    return (await submit(author.client, author.token(), submission)).report_id


def thread_readers(desk: Desk, with_operative: Actor | None) -> list[str]:
    assert desk.world.directory is not None
    readers = desk.world.directory.investigator_recipients()
    if with_operative is not None:
        readers.append(str(with_operative.age_identity.to_public()))
    return readers


async def test_a_reply_and_a_follow_up_are_read_by_their_recipients(desk: Desk) -> None:
    report_id = await file_report(desk, desk.operative)
    assert desk.world.directory is not None
    version = desk.world.directory.version
    reply = seal_message(
        desk.investigator.device,
        thread_readers(desk, desk.operative),
        version,
        report_id,
        "Can you photograph the back entrance?",
    )
    sent = await desk.investigator.client.call(
        "POST", f"/v1/reports/{report_id}/messages", desk.investigator.token(), json=reply
    )
    assert sent.status_code == 201
    retried = await desk.investigator.client.call(
        "POST", f"/v1/reports/{report_id}/messages", desk.investigator.token(), json=reply
    )
    assert retried.status_code == 200

    inbox = await desk.operative.client.call("GET", "/v1/inbox", desk.operative.token())
    assert [(m["id"], m["read"]) for m in inbox.json()["messages"]] == [
        (reply["message_id"], False)
    ]
    thread = await desk.operative.client.call(
        "GET", f"/v1/reports/{report_id}/messages", desk.operative.token()
    )
    (item,) = thread.json()["messages"]
    assert item["author_id"] is None  # which investigator wrote is not the operative's business
    assert open_message(item, str(desk.operative.age_identity)) == (
        "Can you photograph the back entrance?"
    )
    read = await desk.operative.client.call(
        "POST", f"/v1/messages/{reply['message_id']}/read", desk.operative.token()
    )
    assert read.status_code == 204
    inbox = await desk.operative.client.call("GET", "/v1/inbox", desk.operative.token())
    assert [m["read"] for m in inbox.json()["messages"]] == [True]

    follow_up = seal_message(
        desk.operative.device, thread_readers(desk, None), version, report_id, "Tomorrow night."
    )
    sent = await desk.operative.client.call(
        "POST", f"/v1/reports/{report_id}/messages", desk.operative.token(), json=follow_up
    )
    assert sent.status_code == 201
    team = await desk.investigator.client.call(
        "GET", f"/v1/reports/{report_id}/messages", desk.investigator.token()
    )
    texts = [open_message(m, str(desk.investigator.age_identity)) for m in team.json()["messages"]]
    assert texts == ["Can you photograph the back entrance?", "Tomorrow night."]


async def test_another_operative_can_neither_read_nor_write_a_thread(desk: Desk) -> None:
    report_id = await file_report(desk, desk.operative)
    assert desk.world.directory is not None
    outsider = desk.other_operative
    thread = await outsider.client.call(
        "GET", f"/v1/reports/{report_id}/messages", outsider.token()
    )
    assert thread.status_code == 404
    message = seal_message(
        outsider.device, thread_readers(desk, None), desk.world.directory.version, report_id, "hi"
    )
    written = await outsider.client.call(
        "POST", f"/v1/reports/{report_id}/messages", outsider.token(), json=message
    )
    assert written.status_code == 404
    inbox = await outsider.client.call("GET", "/v1/inbox", outsider.token())
    assert inbox.json()["messages"] == []


async def test_a_reply_not_encrypted_to_the_operative_is_refused(desk: Desk) -> None:
    report_id = await file_report(desk, desk.operative)
    assert desk.world.directory is not None
    # Readable by the team only: the operative could never open it.
    reply = seal_message(
        desk.investigator.device,
        thread_readers(desk, None),
        desk.world.directory.version,
        report_id,
        "lost in transit",
    )
    response = await desk.investigator.client.call(
        "POST", f"/v1/reports/{report_id}/messages", desk.investigator.token(), json=reply
    )
    assert response.status_code == 422
