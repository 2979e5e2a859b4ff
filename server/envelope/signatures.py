"""The exact bytes a device signs for a report or a message, and their verification.

Custody rests on these bytes: an investigator's client recomputes them from what it decrypted
and what the server stored, so every field has one spelling (canonical lowercase UUIDs,
lowercase hex digests, the sent-at string exactly as the client wrote it) and every field ends
with a line feed, so no value can run into the next one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, Literal
from uuid import UUID

import jwt
import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from server.errors import FieldProblem, InvalidInput
from server.identity.dpop import ALG_ES256, InvalidDeviceKey, load_device_key

REPORT_DOMAIN: Final = b"tipline-report-v1\n"
MESSAGE_DOMAIN: Final = b"tipline-message-v1\n"
RECEIPT_DOMAIN: Final = b"tipline-receipt-v1\n"

# For msgspec `Meta(pattern=...)` on wire Structs. Python's `$` also matches before a final
# "\n" and `\d` matches non-ASCII digits, hence [0-9] here and `check_sent_at` (fullmatch plus
# a calendar check) in every builder below.
SENT_AT_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
SHA256_HEX_PATTERN: Final = r"^[0-9a-f]{64}$"
SIGNATURE_PATTERN: Final = r"^[A-Za-z0-9_-]{86}$"
_SENT_AT = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})Z"
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{86}")
# ES256 (RFC 7518 §3.4) is R || S, 32 bytes each; Ed25519 (RFC 8032 §5.1.6) is 64 bytes too.
SIGNATURE_BYTES: Final = 64
P256_SCALAR_BYTES: Final = 32

BadSignatureReason = Literal["encoding", "key", "mismatch"]


class BadSignature(InvalidInput):
    """The device signature does not verify; `reason` is a fixed tag for logs and tests."""

    slug = "bad-signature"
    title = "The device signature does not verify"

    def __init__(self, reason: BadSignatureReason) -> None:
        super().__init__("The device signature does not verify")
        self.reason: BadSignatureReason = reason


class AttachmentDigest(msgspec.Struct, frozen=True):
    attachment_id: UUID
    plaintext_sha256: str
    ciphertext_sha256: str


def _invalid(path: str, message: str) -> InvalidInput:
    return InvalidInput(fields=[FieldProblem(path=path, message=message)])


def check_sent_at(value: str, *, path: str = "$.sent_at") -> str:
    """RFC 3339 UTC, second precision, `Z` suffix, and a real calendar time; returned as is."""
    match = _SENT_AT.fullmatch(value)
    if match is None:
        raise _invalid(path, "Expected YYYY-MM-DDTHH:MM:SSZ in UTC")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise _invalid(path, "Not a real date and time") from None
    return value


def format_timestamp(moment: datetime) -> str:
    """The server's spelling of `received_at`: the same form clients use for `sent_at`."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_sha256(value: str, path: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise _invalid(path, "Expected 64 lowercase hex digits")
    return value


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def report_message(
    report_id: UUID,
    sent_at: str,
    ciphertext_sha256: str,
    attachments: Sequence[AttachmentDigest],
) -> bytes:
    check_sent_at(sent_at)
    _check_sha256(ciphertext_sha256, "$.ciphertext")
    ordered = sorted(attachments, key=lambda a: str(a.attachment_id))
    lines = [REPORT_DOMAIN, f"{report_id}\n{sent_at}\n{ciphertext_sha256}\n".encode("ascii")]
    previous: UUID | None = None
    for index, attachment in enumerate(ordered):
        # One attachment, one line: a repeated id would let two signed lists read the same.
        if attachment.attachment_id == previous:
            raise _invalid("$.attachments", "Attachment ids must be unique")
        previous = attachment.attachment_id
        _check_sha256(attachment.plaintext_sha256, f"$.attachments[{index}].plaintext_sha256")
        _check_sha256(attachment.ciphertext_sha256, f"$.attachments[{index}].ciphertext_sha256")
        lines.append(
            f"{attachment.attachment_id} {attachment.plaintext_sha256} "
            f"{attachment.ciphertext_sha256}\n".encode("ascii")
        )
    return b"".join(lines)


def message_message(
    message_id: UUID, report_id: UUID, sent_at: str, ciphertext_sha256: str
) -> bytes:
    check_sent_at(sent_at)
    _check_sha256(ciphertext_sha256, "$.ciphertext")
    return MESSAGE_DOMAIN + f"{message_id}\n{report_id}\n{sent_at}\n{ciphertext_sha256}\n".encode(
        "ascii"
    )


def receipt_hash(report_id: UUID, received_at: str, ciphertext_sha256: str, signature: str) -> str:
    check_sent_at(received_at, path="$.received_at")
    _check_sha256(ciphertext_sha256, "$.ciphertext")
    if not _SIGNATURE.fullmatch(signature):
        raise _invalid("$.signature", "Expected 86 base64url characters")
    text = f"{report_id}\n{received_at}\n{ciphertext_sha256}\n{signature}\n"
    return sha256_hex(RECEIPT_DOMAIN + text.encode("ascii"))


def _decode_signature(signature_b64url: str) -> bytes:
    # RFC 7515 §2 base64url without padding, canonical: one signature, one spelling, so the
    # receipt (which hashes the signature as sent) cannot be varied by re-encoding it.
    if not _SIGNATURE.fullmatch(signature_b64url):
        raise BadSignature("encoding")
    try:
        raw = base64.urlsafe_b64decode(signature_b64url + "==")
    except binascii.Error:
        raise BadSignature("encoding") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != signature_b64url:
        raise BadSignature("encoding")
    return raw


def verify_device_signature(
    public_jwk: Mapping[str, str], message: bytes, signature_b64url: str
) -> None:
    raw = _decode_signature(signature_b64url)
    try:
        # The key is validated (on-curve, canonical, not small-order) before it is used, so a
        # bad row can never make a forged signature verify.
        device_key, verifier = load_device_key(dict(public_jwk))
    except (InvalidDeviceKey, jwt.PyJWTError):
        raise BadSignature("key") from None
    key = verifier.key
    try:
        # The algorithm follows from the key type alone; nothing the client sends chooses it.
        if device_key.alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            der = encode_dss_signature(
                int.from_bytes(raw[:P256_SCALAR_BYTES], "big"),
                int.from_bytes(raw[P256_SCALAR_BYTES:], "big"),
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        elif device_key.alg != ALG_ES256 and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw, message)
        else:
            raise BadSignature("key")
    except InvalidSignature:
        raise BadSignature("mismatch") from None
