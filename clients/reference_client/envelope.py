"""Sealing and signing on the device: PADME padding, age encryption, the signed bytes.

Written from docs/protocol-envelopes.md, not from the server's code, so the test vectors prove
that two implementations of the document agree. Encryption is pyrage's, signatures are
`cryptography`'s; this module only decides which bytes go in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple
from uuid import UUID

import pyrage
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pyrage import x25519

from clients.reference_client.device import DeviceKeyPair, b64url

REPORT_DOMAIN: Final = b"tipline-report-v1\n"
MESSAGE_DOMAIN: Final = b"tipline-message-v1\n"
RECEIPT_DOMAIN: Final = b"tipline-receipt-v1\n"
LENGTH_PREFIX_BYTES: Final = 4
# The prefix is 32 bits; anything larger could not be unpadded unambiguously.
MAX_MESSAGE_BYTES: Final = 2**32 - 1 - LENGTH_PREFIX_BYTES
SIGNATURE_BYTES: Final = 64
P256_SCALAR_BYTES: Final = 32

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class EnvelopeError(ValueError):
    pass


class AttachmentDigest(NamedTuple):
    attachment_id: UUID
    plaintext_sha256: str
    ciphertext_sha256: str


def padme_length(length: int) -> int:
    """Nikitin et al., "Reducing Metadata Leakage ... with PURBs", PoPETs 2019, Algorithm 1.

    Rounds up to a size whose low bits are zero, leaking O(log log L) bits of the length at
    most 12 % overhead, instead of the exact length an unpadded age ciphertext gives away.
    """
    if length < 1:
        raise EnvelopeError("length must be positive")
    exponent = length.bit_length() - 1  # floor(log2 L)
    exponent_bits = exponent.bit_length()  # floor(log2 E) + 1
    mask = (1 << (exponent - exponent_bits)) - 1  # E >= S for every L >= 1
    return (length + mask) & ~mask


def pad(message: bytes) -> bytes:
    if len(message) > MAX_MESSAGE_BYTES:
        raise EnvelopeError("message too long to pad")
    framed = len(message).to_bytes(LENGTH_PREFIX_BYTES, "big") + message
    return framed + bytes(padme_length(len(framed)) - len(framed))


def unpad(padded: bytes) -> bytes:
    # Decryption already authenticated these bytes; the checks below refuse a sender that did
    # not follow the padding rule, so lengths stay informative only up to the PADME bucket.
    if len(padded) < LENGTH_PREFIX_BYTES:
        raise EnvelopeError("padded message too short")
    length = int.from_bytes(padded[:LENGTH_PREFIX_BYTES], "big")
    end = LENGTH_PREFIX_BYTES + length
    if end > len(padded) or len(padded) != padme_length(end):
        raise EnvelopeError("padded message has the wrong size")
    if any(padded[end:]):
        raise EnvelopeError("padding is not zero")
    return padded[LENGTH_PREFIX_BYTES:end]


def seal(plaintext: bytes, recipients: Sequence[str]) -> bytes:
    if not recipients:
        raise EnvelopeError("no recipients")
    try:
        parsed = [x25519.Recipient.from_str(recipient) for recipient in recipients]
    except pyrage.RecipientError:
        raise EnvelopeError("not an age X25519 recipient") from None
    ciphertext: bytes = pyrage.encrypt(pad(plaintext), parsed)
    return ciphertext


def open_sealed(ciphertext: bytes, identity: str) -> bytes:
    try:
        key = x25519.Identity.from_str(identity)
    except pyrage.IdentityError:
        raise EnvelopeError("not an age X25519 identity") from None
    try:
        padded: bytes = pyrage.decrypt(ciphertext, [key])
    except pyrage.DecryptError:
        raise EnvelopeError("cannot decrypt") from None
    return unpad(padded)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_sent_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: str) -> str:
    if not _TIMESTAMP.fullmatch(value):
        raise EnvelopeError("timestamp is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # noqa: DTZ007 (the Z is matched above)
    except ValueError:
        raise EnvelopeError("timestamp is not a real time") from None
    return value


def _digest(value: str) -> str:
    if not _SHA256_HEX.fullmatch(value):
        raise EnvelopeError("digest is not lowercase hex SHA-256")
    return value


def report_message(
    report_id: UUID,
    sent_at: str,
    ciphertext_sha256: str,
    attachments: Sequence[AttachmentDigest],
) -> bytes:
    head = f"{report_id}\n{_timestamp(sent_at)}\n{_digest(ciphertext_sha256)}\n"
    ids = [str(a.attachment_id) for a in attachments]
    if len(set(ids)) != len(ids):
        raise EnvelopeError("duplicate attachment id")
    tail = "".join(
        f"{a.attachment_id} {_digest(a.plaintext_sha256)} {_digest(a.ciphertext_sha256)}\n"
        for a in sorted(attachments, key=lambda a: str(a.attachment_id))
    )
    return REPORT_DOMAIN + (head + tail).encode("ascii")


def message_message(
    message_id: UUID, report_id: UUID, sent_at: str, ciphertext_sha256: str
) -> bytes:
    text = f"{message_id}\n{report_id}\n{_timestamp(sent_at)}\n{_digest(ciphertext_sha256)}\n"
    return MESSAGE_DOMAIN + text.encode("ascii")


def receipt_hash(report_id: UUID, received_at: str, ciphertext_sha256: str, signature: str) -> str:
    if not _B64URL.fullmatch(signature):
        raise EnvelopeError("signature is not base64url")
    text = f"{report_id}\n{_timestamp(received_at)}\n{_digest(ciphertext_sha256)}\n{signature}\n"
    return sha256_hex(RECEIPT_DOMAIN + text.encode("ascii"))


def sign_report(
    device: DeviceKeyPair,
    report_id: UUID,
    sent_at: str,
    ciphertext: bytes,
    attachments: Sequence[AttachmentDigest] = (),
) -> str:
    # DeviceKeyPair.sign already returns JWS form: R || S for ES256 (RFC 7518 §3.4).
    message = report_message(report_id, sent_at, sha256_hex(ciphertext), attachments)
    return b64url(device.sign(message))


def sign_message(
    device: DeviceKeyPair, message_id: UUID, report_id: UUID, sent_at: str, ciphertext: bytes
) -> str:
    return b64url(
        device.sign(message_message(message_id, report_id, sent_at, sha256_hex(ciphertext)))
    )


def _b64url_decode(value: str) -> bytes:
    if not _B64URL.fullmatch(value):
        raise EnvelopeError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise EnvelopeError("not base64url") from None
    if b64url(raw) != value:
        raise EnvelopeError("not canonical base64url")
    return raw


def verify_signature(public_jwk: Mapping[str, str], message: bytes, signature: str) -> None:
    """What an investigator's client runs after decrypting: raises EnvelopeError on mismatch."""
    raw = _b64url_decode(signature)
    if len(raw) != SIGNATURE_BYTES:
        raise EnvelopeError("signature has the wrong length")
    kty, crv = public_jwk.get("kty"), public_jwk.get("crv")
    if (kty, crv) not in {("EC", "P-256"), ("OKP", "Ed25519")}:
        raise EnvelopeError("unsupported device key type")
    try:
        if kty == "EC":
            key = ec.EllipticCurvePublicNumbers(
                int.from_bytes(_b64url_decode(public_jwk["x"]), "big"),
                int.from_bytes(_b64url_decode(public_jwk["y"]), "big"),
                ec.SECP256R1(),
            ).public_key()
            der = encode_dss_signature(
                int.from_bytes(raw[:P256_SCALAR_BYTES], "big"),
                int.from_bytes(raw[P256_SCALAR_BYTES:], "big"),
            )
            key.verify(der, message, ec.ECDSA(hashes.SHA256()))
        else:
            raw_key = _b64url_decode(public_jwk["x"])
            ed25519.Ed25519PublicKey.from_public_bytes(raw_key).verify(raw, message)
    except EnvelopeError:
        raise
    except (InvalidSignature, KeyError, ValueError):
        # ValueError: cryptography refuses a point off the curve or a key of the wrong size.
        raise EnvelopeError("signature does not verify") from None
