"""The published test vectors hold for both implementations and appear in the protocol doc.

A mobile team builds against docs/protocol-envelopes.md; if these bytes drift, their clients
stop verifying, so the vectors are checked against the server, the reference client and the
document at once.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from clients.reference_client import envelope as client
from clients.reference_client.device import DeviceKeyPair
from server.envelope import signatures as server
from server.envelope.age_header import check_age_ciphertext
from server.envelope.signatures import AttachmentDigest, BadSignature

ROOT = Path(__file__).resolve().parents[2]
VECTORS: dict[str, Any] = json.loads((Path(__file__).parent / "vectors.json").read_text())
DOC = (ROOT / "docs" / "protocol-envelopes.md").read_text(encoding="utf-8")
REPORT: dict[str, Any] = VECTORS["report"]
MESSAGE: dict[str, Any] = VECTORS["message"]


def b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def ed25519_device() -> DeviceKeyPair:
    d = b64url_decode(VECTORS["device_keys"]["ed25519"]["private_d"])
    return DeviceKeyPair(ed25519.Ed25519PrivateKey.from_private_bytes(d))


def p256_device() -> DeviceKeyPair:
    d = int.from_bytes(b64url_decode(VECTORS["device_keys"]["p256"]["private_d"]), "big")
    return DeviceKeyPair(ec.derive_private_key(d, ec.SECP256R1()))


def jwk(kind: str) -> dict[str, str]:
    value: dict[str, str] = VECTORS["device_keys"][kind]["public_jwk"]
    return value


def report_ciphertext() -> bytes:
    return base64.b64decode(REPORT["ciphertext_base64"], validate=True)


def message_ciphertext() -> bytes:
    return base64.b64decode(MESSAGE["ciphertext_base64"], validate=True)


def server_attachments() -> list[AttachmentDigest]:
    return [
        AttachmentDigest(
            attachment_id=UUID(a["attachment_id"]),
            plaintext_sha256=a["plaintext_sha256"],
            ciphertext_sha256=a["ciphertext_sha256"],
        )
        for a in REPORT["attachments"]
    ]


def client_attachments() -> list[client.AttachmentDigest]:
    return [
        client.AttachmentDigest(
            UUID(a["attachment_id"]), a["plaintext_sha256"], a["ciphertext_sha256"]
        )
        for a in REPORT["attachments"]
    ]


def test_the_fixed_keys_give_the_published_public_keys() -> None:
    assert ed25519_device().public_jwk() == jwk("ed25519")
    assert p256_device().public_jwk() == jwk("p256")
    scalar = hashlib.sha256(b"tipline-test-vector-p256").digest()
    assert b64url_decode(VECTORS["device_keys"]["p256"]["private_d"]) == scalar


def test_padme_lengths() -> None:
    for length, padded in VECTORS["padding"]["lengths"]:
        assert client.padme_length(length) == padded
    example = VECTORS["padding"]["example"]
    padded_bytes = client.pad(bytes.fromhex(example["message_hex"]))
    assert padded_bytes.hex() == example["padded_hex"]
    assert client.unpad(padded_bytes).hex() == example["message_hex"]


def test_the_report_ciphertext_is_a_valid_envelope_for_each_identity() -> None:
    ciphertext = report_ciphertext()
    assert hashlib.sha256(ciphertext).hexdigest() == REPORT["ciphertext_sha256"]
    form = check_age_ciphertext(ciphertext, max_recipients=8, max_bytes=1 << 20)
    assert form.recipients == REPORT["recipients"] == len(VECTORS["age"]["recipients"])
    for identity in VECTORS["age"]["identities"]:
        assert client.open_sealed(ciphertext, identity).decode() == REPORT["plaintext_utf8"]
    assert client.pad(REPORT["plaintext_utf8"].encode()).hex() == REPORT["padded_plaintext_hex"]


def test_both_implementations_build_the_published_report_bytes() -> None:
    report_id, digest = UUID(REPORT["report_id"]), REPORT["ciphertext_sha256"]
    expected = bytes.fromhex(REPORT["message_hex"])
    built = server.report_message(report_id, REPORT["sent_at"], digest, server_attachments())
    assert built == expected
    assert client.report_message(report_id, REPORT["sent_at"], digest, client_attachments()) == (
        expected
    )
    assert hashlib.sha256(expected).hexdigest() == REPORT["message_sha256"]
    # The vector lists its attachments out of order, so it also proves the sorting rule.
    ids = [a["attachment_id"] for a in REPORT["attachments"]]
    assert ids != sorted(ids)


def test_the_ed25519_report_signature_is_reproduced_and_verifies() -> None:
    ciphertext = report_ciphertext()
    signature = client.sign_report(
        ed25519_device(),
        UUID(REPORT["report_id"]),
        REPORT["sent_at"],
        ciphertext,
        client_attachments(),
    )
    assert signature == REPORT["ed25519_signature"]  # RFC 8032 signatures are deterministic
    message = bytes.fromhex(REPORT["message_hex"])
    server.verify_device_signature(jwk("ed25519"), message, signature)
    client.verify_signature(jwk("ed25519"), message, signature)


def test_the_p256_report_signature_verifies_on_both_sides() -> None:
    # ECDSA signatures are randomised: the vector can only be verified, not reproduced.
    message = bytes.fromhex(REPORT["message_hex"])
    server.verify_device_signature(jwk("p256"), message, REPORT["p256_signature"])
    client.verify_signature(jwk("p256"), message, REPORT["p256_signature"])
    fresh = client.sign_report(
        p256_device(),
        UUID(REPORT["report_id"]),
        REPORT["sent_at"],
        report_ciphertext(),
        client_attachments(),
    )
    server.verify_device_signature(jwk("p256"), message, fresh)


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_the_published_receipts(kind: str) -> None:
    args = (
        UUID(REPORT["report_id"]),
        REPORT["received_at"],
        REPORT["ciphertext_sha256"],
        REPORT[f"{kind}_signature"],
    )
    assert server.receipt_hash(*args) == REPORT[f"{kind}_receipt"]
    assert client.receipt_hash(*args) == REPORT[f"{kind}_receipt"]


@pytest.mark.parametrize("kind", ["ed25519", "p256"])
def test_the_published_signatures_do_not_verify_for_changed_bytes(kind: str) -> None:
    message = bytearray.fromhex(REPORT["message_hex"])
    message[-2] ^= 1
    with pytest.raises(BadSignature):
        server.verify_device_signature(jwk(kind), bytes(message), REPORT[f"{kind}_signature"])


def test_both_implementations_build_the_published_message_bytes() -> None:
    ciphertext = message_ciphertext()
    digest = hashlib.sha256(ciphertext).hexdigest()
    assert digest == MESSAGE["ciphertext_sha256"]
    ids = UUID(MESSAGE["message_id"]), UUID(MESSAGE["report_id"])
    expected = bytes.fromhex(MESSAGE["message_hex"])
    assert server.message_message(*ids, MESSAGE["sent_at"], digest) == expected
    assert client.message_message(*ids, MESSAGE["sent_at"], digest) == expected
    assert hashlib.sha256(expected).hexdigest() == MESSAGE["message_sha256"]
    signature = client.sign_message(ed25519_device(), *ids, MESSAGE["sent_at"], ciphertext)
    assert signature == MESSAGE["ed25519_signature"]
    for kind in ("ed25519", "p256"):
        server.verify_device_signature(jwk(kind), expected, MESSAGE[f"{kind}_signature"])
    for identity in VECTORS["age"]["identities"]:
        assert client.open_sealed(ciphertext, identity).decode() == MESSAGE["plaintext_utf8"]
    assert check_age_ciphertext(ciphertext, max_recipients=8, max_bytes=1 << 20).recipients == 2


def _published_values() -> list[tuple[str, str]]:
    values: list[tuple[str, str]] = [
        (f"device_keys.{kind}.{name}", VECTORS["device_keys"][kind]["public_jwk"][name])
        for kind, names in (("ed25519", ("x",)), ("p256", ("x", "y")))
        for name in names
    ]
    values += [
        (f"device_keys.{k}.private_d", VECTORS["device_keys"][k]["private_d"])
        for k in ("ed25519", "p256")
    ]
    values += [(f"age.identities[{i}]", v) for i, v in enumerate(VECTORS["age"]["identities"])]
    values += [(f"age.recipients[{i}]", v) for i, v in enumerate(VECTORS["age"]["recipients"])]
    values += [(f"padding.example.{k}", v) for k, v in VECTORS["padding"]["example"].items()]
    for section, data in (("report", REPORT), ("message", MESSAGE)):
        for name, value in data.items():
            if isinstance(value, str) and name != "plaintext_utf8":
                values.append((f"{section}.{name}", value))
    for index, item in enumerate(REPORT["attachments"]):
        values += [(f"report.attachments[{index}].{k}", v) for k, v in item.items()]
    return values


@pytest.mark.parametrize(("name", "value"), _published_values(), ids=lambda v: str(v)[:40])
def test_the_protocol_document_publishes_each_vector_value(name: str, value: str) -> None:
    # Long values are wrapped in the document; whitespace is not part of any of them.
    assert value in "".join(DOC.split()), f"{name} is missing from docs/protocol-envelopes.md"


def test_the_protocol_document_publishes_the_padding_table() -> None:
    flat = "".join(DOC.split())
    for length, padded in VECTORS["padding"]["lengths"]:
        assert f"|{length}|{padded}|" in flat
