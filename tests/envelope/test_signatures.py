"""The signed bytes have one spelling, and only the device's own signature over them verifies."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import msgspec
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyrage import x25519

from clients.reference_client import envelope as client
from clients.reference_client.device import DeviceKeyPair, KeyKind, b64url
from server.envelope import signatures as server
from server.envelope.age_header import check_age_ciphertext
from server.envelope.signatures import AttachmentDigest, BadSignature
from server.errors import InvalidInput

REPORT_ID = UUID("00000000-0000-4000-8000-000000000001")
MESSAGE_ID = UUID("00000000-0000-4000-8000-000000000002")
SENT_AT = "2026-11-30T07:00:00Z"
DIGEST = "ab" * 32
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def digest(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


def attachment(number: int) -> AttachmentDigest:
    return AttachmentDigest(
        attachment_id=UUID(int=number),
        plaintext_sha256=digest(f"plain {number}"),
        ciphertext_sha256=digest(f"sealed {number}"),
    )


def to_client(item: AttachmentDigest) -> client.AttachmentDigest:
    return client.AttachmentDigest(*msgspec.structs.astuple(item))


def test_report_message_bytes_are_exactly_as_documented() -> None:
    a, b = attachment(0xB), attachment(0xA)
    expected = (
        b"tipline-report-v1\n"
        b"00000000-0000-4000-8000-000000000001\n"
        b"2026-11-30T07:00:00Z\n" + DIGEST.encode() + b"\n"
        b"00000000-0000-0000-0000-00000000000a "
        + f"{b.plaintext_sha256} {b.ciphertext_sha256}\n".encode()
        + b"00000000-0000-0000-0000-00000000000b "
        + f"{a.plaintext_sha256} {a.ciphertext_sha256}\n".encode()
    )
    assert server.report_message(REPORT_ID, SENT_AT, DIGEST, [a, b]) == expected
    assert server.report_message(REPORT_ID, SENT_AT, DIGEST, [b, a]) == expected


def test_a_report_without_attachments_ends_after_the_digest() -> None:
    assert server.report_message(REPORT_ID, SENT_AT, DIGEST, []) == (
        b"tipline-report-v1\n00000000-0000-4000-8000-000000000001\n"
        b"2026-11-30T07:00:00Z\n" + DIGEST.encode() + b"\n"
    )


def test_message_message_bytes_are_exactly_as_documented() -> None:
    assert server.message_message(MESSAGE_ID, REPORT_ID, SENT_AT, DIGEST) == (
        b"tipline-message-v1\n00000000-0000-4000-8000-000000000002\n"
        b"00000000-0000-4000-8000-000000000001\n2026-11-30T07:00:00Z\n" + DIGEST.encode() + b"\n"
    )


def test_receipt_hash_is_sha256_of_the_documented_text() -> None:
    signature = "A" * 86
    text = f"tipline-receipt-v1\n{REPORT_ID}\n{SENT_AT}\n{DIGEST}\n{signature}\n"
    expected = hashlib.sha256(text.encode()).hexdigest()
    assert server.receipt_hash(REPORT_ID, SENT_AT, DIGEST, signature) == expected
    assert client.receipt_hash(REPORT_ID, SENT_AT, DIGEST, signature) == expected


def test_attachment_order_follows_the_id_not_the_list() -> None:
    ids = [uuid.uuid4() for _ in range(20)]
    items = [AttachmentDigest(i, digest(str(i)), digest(f"c{i}")) for i in ids]
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, items)
    lines = message.decode().splitlines()[4:]
    assert [line.split(" ")[0] for line in lines] == sorted(str(i) for i in ids)
    assert message == server.report_message(REPORT_ID, SENT_AT, DIGEST, items[::-1])
    same = [to_client(item) for item in items]
    assert client.report_message(REPORT_ID, SENT_AT, DIGEST, same[::-1]) == message


def test_a_repeated_attachment_id_is_refused_by_both_sides() -> None:
    twice = [attachment(1), attachment(1)]
    with pytest.raises(InvalidInput):
        server.report_message(REPORT_ID, SENT_AT, DIGEST, twice)
    with pytest.raises(client.EnvelopeError):
        client.report_message(REPORT_ID, SENT_AT, DIGEST, [to_client(a) for a in twice])


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-30T07:00:00+00:00",
        "2026-11-30T07:00:00.000Z",
        "2026-11-30 07:00:00Z",
        "2026-11-30t07:00:00z",
        "2026-11-30T07:00:00",
        "2026-11-30T07:00Z",
        "2026-11-30T07:00:00Z\n",
        " 2026-11-30T07:00:00Z",
        "2026-02-30T07:00:00Z",
        "2026-13-01T07:00:00Z",
        "2026-11-30T24:00:00Z",
        "2026-11-30T07:60:00Z",
        "2026-11-30T07:00:60Z",
        "0000-01-01T00:00:00Z",
        "２０２６-11-30T07:00:00Z",  # noqa: RUF001 (full-width digits are the point)
        "\u0662026-11-30T07:00:00Z",  # an Arabic-Indic digit, which \d would accept
        "",
    ],
    ids=repr,
)
def test_sent_at_must_be_second_precision_utc_with_z(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        server.check_sent_at(value)
    assert [field.path for field in caught.value.fields] == ["$.sent_at"]
    with pytest.raises(InvalidInput):
        server.report_message(REPORT_ID, value, DIGEST, [])
    with pytest.raises(InvalidInput):
        server.message_message(MESSAGE_ID, REPORT_ID, value, DIGEST)
    with pytest.raises(client.EnvelopeError):
        client.report_message(REPORT_ID, value, DIGEST, [])


@pytest.mark.parametrize(
    "value", ["2026-11-30T07:00:00Z", "2028-02-29T23:59:59Z", "1970-01-01T00:00:00Z"]
)
def test_real_utc_times_pass_unchanged(value: str) -> None:
    assert server.check_sent_at(value) == value


def test_timestamps_are_formatted_in_the_signed_form() -> None:
    moment = datetime(2026, 11, 30, 9, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert server.format_timestamp(moment) == "2026-11-30T07:00:00Z"
    now = client.now_sent_at()
    assert server.check_sent_at(now) == now
    assert server.format_timestamp(datetime.now(UTC)) >= now
    with pytest.raises(ValueError, match="naive"):
        server.format_timestamp(datetime(2026, 1, 1))  # noqa: DTZ001 (the naive case is the test)


@pytest.mark.parametrize("value", ["AB" * 32, "ab" * 31, "ab" * 33, "ab" * 31 + "a\n", "g" * 64])
def test_digests_must_be_lowercase_hex_sha256(value: str) -> None:
    with pytest.raises(InvalidInput):
        server.report_message(REPORT_ID, SENT_AT, value, [])
    with pytest.raises(InvalidInput):
        server.report_message(
            REPORT_ID, SENT_AT, DIGEST, [AttachmentDigest(UUID(int=1), value, DIGEST)]
        )
    with pytest.raises(InvalidInput):
        server.receipt_hash(REPORT_ID, SENT_AT, value, "A" * 86)
    with pytest.raises(client.EnvelopeError):
        client.report_message(REPORT_ID, SENT_AT, value, [])


@pytest.mark.parametrize(
    "value", ["A" * 85, "A" * 87, "A" * 85 + "=", "A" * 84 + "+/", "A" * 85 + "\n"]
)
def test_receipts_take_only_a_signature_of_the_right_form(value: str) -> None:
    with pytest.raises(InvalidInput):
        server.receipt_hash(REPORT_ID, SENT_AT, DIGEST, value)


@pytest.fixture(params=["p256", "ed25519"])
def device(request: pytest.FixtureRequest) -> DeviceKeyPair:
    kind: KeyKind = request.param
    return DeviceKeyPair.generate(kind)


def sealed_report() -> bytes:
    return client.seal(b"report text", [str(x25519.Identity.generate().to_public())])


def test_a_client_signed_report_verifies_on_the_server(device: DeviceKeyPair) -> None:
    ciphertext = sealed_report()
    attachments = [to_client(attachment(n)) for n in (3, 1, 2)]
    signature = client.sign_report(device, REPORT_ID, SENT_AT, ciphertext, attachments)
    message = server.report_message(
        REPORT_ID, SENT_AT, server.sha256_hex(ciphertext), [attachment(n) for n in (1, 2, 3)]
    )
    server.verify_device_signature(device.public_jwk(), message, signature)
    client.verify_signature(device.public_jwk(), message, signature)


def test_a_client_signed_message_verifies_on_the_server(device: DeviceKeyPair) -> None:
    ciphertext = sealed_report()
    signature = client.sign_message(device, MESSAGE_ID, REPORT_ID, SENT_AT, ciphertext)
    message = server.message_message(MESSAGE_ID, REPORT_ID, SENT_AT, server.sha256_hex(ciphertext))
    server.verify_device_signature(device.public_jwk(), message, signature)


def test_any_single_byte_change_to_the_ciphertext_is_refused(device: DeviceKeyPair) -> None:
    ciphertext = sealed_report()
    signature = client.sign_report(device, REPORT_ID, SENT_AT, ciphertext)
    for position in range(len(ciphertext)):
        tampered = bytearray(ciphertext)
        tampered[position] ^= 0x01
        message = server.report_message(REPORT_ID, SENT_AT, server.sha256_hex(bytes(tampered)), [])
        with pytest.raises(BadSignature) as caught:
            server.verify_device_signature(device.public_jwk(), message, signature)
        assert caught.value.reason == "mismatch"


def test_any_single_byte_change_to_the_signature_is_refused(device: DeviceKeyPair) -> None:
    ciphertext = sealed_report()
    message = server.report_message(REPORT_ID, SENT_AT, server.sha256_hex(ciphertext), [])
    raw = base64.urlsafe_b64decode(
        client.sign_report(device, REPORT_ID, SENT_AT, ciphertext) + "=="
    )
    server.verify_device_signature(device.public_jwk(), message, b64url(raw))
    for position in range(len(raw)):
        for flip in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[position] ^= flip
            with pytest.raises(BadSignature):
                server.verify_device_signature(
                    device.public_jwk(), message, b64url(bytes(tampered))
                )


def test_any_character_change_to_the_signature_text_is_refused(device: DeviceKeyPair) -> None:
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, [])
    signature = b64url(device.sign(message))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for position in range(len(signature)):
        for char in alphabet[:: 7 if position < len(signature) - 1 else 1]:
            if char == signature[position]:
                continue
            changed = signature[:position] + char + signature[position + 1 :]
            # Including the spellings of the last character that decode to the same bytes.
            with pytest.raises(BadSignature):
                server.verify_device_signature(device.public_jwk(), message, changed)


def test_a_signature_by_another_device_or_over_other_fields_is_refused(
    device: DeviceKeyPair,
) -> None:
    ciphertext = sealed_report()
    signature = client.sign_report(device, REPORT_ID, SENT_AT, ciphertext)
    digest_hex = server.sha256_hex(ciphertext)
    others = [
        server.report_message(UUID(int=REPORT_ID.int + 1), SENT_AT, digest_hex, []),
        server.report_message(REPORT_ID, "2026-11-30T07:00:01Z", digest_hex, []),
        server.report_message(REPORT_ID, SENT_AT, digest_hex, [attachment(1)]),
        server.message_message(MESSAGE_ID, REPORT_ID, SENT_AT, digest_hex),
    ]
    for message in others:
        with pytest.raises(BadSignature):
            server.verify_device_signature(device.public_jwk(), message, signature)
    right = server.report_message(REPORT_ID, SENT_AT, digest_hex, [])
    kinds: tuple[KeyKind, ...] = ("p256", "ed25519")
    for kind in kinds:
        stranger = DeviceKeyPair.generate(kind)
        with pytest.raises(BadSignature):
            server.verify_device_signature(stranger.public_jwk(), right, signature)


def test_an_attachment_added_or_changed_after_signing_is_refused(device: DeviceKeyPair) -> None:
    ciphertext = sealed_report()
    items = [attachment(1), attachment(2)]
    signature = client.sign_report(
        device, REPORT_ID, SENT_AT, ciphertext, [to_client(a) for a in items]
    )
    digest_hex = server.sha256_hex(ciphertext)
    swapped = AttachmentDigest(
        items[1].attachment_id, items[1].ciphertext_sha256, items[1].plaintext_sha256
    )
    for changed in ([items[0]], [*items, attachment(3)], [items[0], swapped]):
        with pytest.raises(BadSignature):
            server.verify_device_signature(
                device.public_jwk(),
                server.report_message(REPORT_ID, SENT_AT, digest_hex, changed),
                signature,
            )


def test_der_encoded_es256_signatures_are_refused() -> None:
    # RFC 7518 §3.4 fixes R || S; a second accepted encoding would give one signature two
    # receipts.
    private = ec.generate_private_key(ec.SECP256R1())
    device = DeviceKeyPair(private)
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, [])
    der = private.sign(message, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(device.public_jwk(), message, b64url(der))
    assert caught.value.reason == "encoding"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "A" * 85,
        "A" * 87,
        "A" * 88,
        "A" * 84 + "==",
        "A" * 85 + "=",
        "+" * 86,
        "/" * 86,
        "A" * 85 + " ",
        "A" * 85 + "\n",
        "Ａ" * 86,  # noqa: RUF001 (full-width letters are the point)
    ],
    ids=repr,
)
def test_malformed_signature_encodings_are_refused(signature: str) -> None:
    device = DeviceKeyPair.generate("ed25519")
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(device.public_jwk(), b"message", signature)
    assert caught.value.reason == "encoding"


@pytest.mark.parametrize(
    ("r", "s"), [(0, 1), (1, 0), (0, 0), (P256_ORDER, 1), (1, P256_ORDER), (2**256 - 1, 2**256 - 1)]
)
def test_es256_scalars_out_of_range_are_refused(r: int, s: int) -> None:
    device = DeviceKeyPair.generate("p256")
    signature = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(device.public_jwk(), b"message", signature)
    assert caught.value.reason == "mismatch"


def test_an_ed25519_signature_never_verifies_under_a_p256_key() -> None:
    ed, p256 = DeviceKeyPair.generate("ed25519"), DeviceKeyPair.generate("p256")
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, [])
    with pytest.raises(BadSignature):
        server.verify_device_signature(p256.public_jwk(), message, b64url(ed.sign(message)))
    with pytest.raises(BadSignature):
        server.verify_device_signature(ed.public_jwk(), message, b64url(p256.sign(message)))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": "AAAA"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "A" * 64, "y": "A" * 64},
        {"kty": "EC", "crv": "P-256", "x": b64url(bytes(32)), "y": b64url(bytes(32))},
        # The Ed25519 identity point: small order, so one signature would fit many messages.
        {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x01" + bytes(31))},
        {"kty": "OKP", "crv": "X25519", "x": b64url(os.urandom(32))},
        {},
    ],
    ids=lambda jwk: jwk.get("crv", jwk.get("kty", "empty")),
)
def test_an_unusable_device_key_is_refused(jwk: dict[str, str]) -> None:
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(jwk, b"message", "A" * 86)
    assert caught.value.reason == "key"


def test_a_key_carrying_private_material_is_refused() -> None:
    device = DeviceKeyPair.generate("ed25519")
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, [])
    leaked = {**device.public_jwk(), "d": b64url(os.urandom(32))}
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(leaked, message, b64url(device.sign(message)))
    assert caught.value.reason == "key"


def test_bad_signature_is_a_422_with_a_fixed_text() -> None:
    device = DeviceKeyPair.generate("ed25519")
    with pytest.raises(BadSignature) as caught:
        server.verify_device_signature(device.public_jwk(), b"m", "MARKER" + "A" * 80)
    error = caught.value
    assert (error.status, error.slug, error.detail) == (
        422,
        "bad-signature",
        "The device signature does not verify",
    )
    assert isinstance(error, InvalidInput)


def test_the_client_verifier_refuses_what_the_server_refuses(device: DeviceKeyPair) -> None:
    message = server.report_message(REPORT_ID, SENT_AT, DIGEST, [])
    signature = b64url(device.sign(message))
    client.verify_signature(device.public_jwk(), message, signature)
    tampered = bytearray(base64.urlsafe_b64decode(signature + "=="))
    tampered[10] ^= 1
    for bad in (b64url(bytes(tampered)), signature[:-1], signature + "A"):
        with pytest.raises(client.EnvelopeError):
            client.verify_signature(device.public_jwk(), message, bad)
    with pytest.raises(client.EnvelopeError):
        client.verify_signature(device.public_jwk(), message + b"x", signature)
    with pytest.raises(client.EnvelopeError):
        client.verify_signature({"kty": "RSA"}, message, signature)


def test_sealed_then_signed_passes_both_server_checks(device: DeviceKeyPair) -> None:
    identities = [x25519.Identity.generate() for _ in range(4)]
    ciphertext = client.seal(os.urandom(700), [str(i.to_public()) for i in identities])
    signature = client.sign_report(device, REPORT_ID, SENT_AT, ciphertext)
    form = check_age_ciphertext(ciphertext, max_recipients=4, max_bytes=1 << 20)
    assert form.recipients == 4
    message = server.report_message(REPORT_ID, SENT_AT, server.sha256_hex(ciphertext), [])
    server.verify_device_signature(device.public_jwk(), message, signature)
    receipt = server.receipt_hash(REPORT_ID, SENT_AT, server.sha256_hex(ciphertext), signature)
    assert receipt == client.receipt_hash(
        REPORT_ID, SENT_AT, client.sha256_hex(ciphertext), signature
    )
