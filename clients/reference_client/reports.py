"""Composing, sealing, signing and opening reports and messages on the device.

The plaintext is a small JSON document; it is padded (PADME) and age-encrypted to every
investigator in the signed key directory before it leaves the phone, and signed by the device
key over the exact ciphertext, so the server holds bytes it cannot read and cannot alter.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from clients.reference_client.api import Session, TiplineClient, decode
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.envelope import (
    AttachmentDigest,
    EnvelopeError,
    message_message,
    now_sent_at,
    open_sealed,
    report_message,
    seal,
    sha256_hex,
    sign_message,
    sign_report,
    verify_signature,
)
from clients.reference_client.keys import Directory


class TipReport(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an operative writes; only the investigators' keys can open it."""

    text: str
    location: str | None = None
    observed_at: str | None = None
    # The operative's own age recipient, for the investigators' replies. It travels inside the
    # signed ciphertext, so the server can neither read it nor swap in a key of its own (an
    # operative's key is not in the signed directory, which lists only the team's keys).
    reply_to: str | None = None


class ReportReceipt(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    received_at: str
    receipt: str


class Submission(msgspec.Struct, frozen=True):
    report_id: uuid.UUID
    sent_at: str
    directory_version: int
    ciphertext: str
    signature: str
    attachments: list[Any] = msgspec.field(default_factory=list)


def seal_report(
    device: DeviceKeyPair,
    directory: Directory,
    report: TipReport,
    report_id: uuid.UUID | None = None,
    sent_at: str | None = None,
    attachments: Sequence[AttachmentDigest] = (),
) -> Submission:
    """`attachments`: evidence already uploaded (clients/reference_client/evidence.py), whose
    digests the device signs with the report."""
    report_id = report_id or uuid.uuid4()
    sent_at = sent_at or now_sent_at()
    ciphertext = seal(msgspec.json.encode(report), directory.investigator_recipients())
    return Submission(
        report_id=report_id,
        sent_at=sent_at,
        directory_version=directory.version,
        ciphertext=base64.b64encode(ciphertext).decode("ascii"),
        signature=sign_report(device, report_id, sent_at, ciphertext, attachments),
        attachments=[
            {
                "attachment_id": str(a.attachment_id),
                "plaintext_sha256": a.plaintext_sha256,
                "ciphertext_sha256": a.ciphertext_sha256,
            }
            for a in attachments
        ],
    )


def seal_message(
    device: DeviceKeyPair,
    recipients: Sequence[str],
    directory_version: int,
    report_id: uuid.UUID,
    text: str,
    message_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    message_id = message_id or uuid.uuid4()
    sent_at = now_sent_at()
    ciphertext = seal(text.encode("utf-8"), recipients)
    return {
        "message_id": str(message_id),
        "sent_at": sent_at,
        "directory_version": directory_version,
        "ciphertext": base64.b64encode(ciphertext).decode("ascii"),
        "signature": sign_message(device, message_id, report_id, sent_at, ciphertext),
    }


async def submit(
    client: TiplineClient, session: Session | str, submission: Submission
) -> ReportReceipt:
    response = await client.call(
        "POST", "/v1/reports", session, json=msgspec.to_builtins(submission)
    )
    return decode(response, ReportReceipt)


def open_report(detail: Mapping[str, Any], identity: str) -> TipReport:
    """Verifies the device signature over the exact ciphertext, then decrypts."""
    ciphertext = base64.b64decode(detail["ciphertext"])
    if sha256_hex(ciphertext) != detail["ciphertext_sha256"]:
        raise EnvelopeError("the ciphertext does not match its digest")
    cited = [
        AttachmentDigest(
            uuid.UUID(a["attachment_id"]), a["plaintext_sha256"], a["ciphertext_sha256"]
        )
        for a in detail.get("attachments", [])
    ]
    signed = report_message(
        uuid.UUID(detail["id"]), detail["sent_at"], sha256_hex(ciphertext), cited
    )
    verify_signature(detail["device_key"], signed, detail["signature"])
    return msgspec.json.decode(open_sealed(ciphertext, identity), type=TipReport)


def open_message(item: Mapping[str, Any], identity: str) -> str:
    ciphertext = base64.b64decode(item["ciphertext"])
    signed = message_message(
        uuid.UUID(item["id"]), uuid.UUID(item["report_id"]), item["sent_at"], sha256_hex(ciphertext)
    )
    verify_signature(item["device_key"], signed, item["signature"])
    return open_sealed(ciphertext, identity).decode("utf-8")
