"""The form of an age v1 ciphertext (c2sp.org/age), checked before anything is stored.

The server cannot decrypt, so this is all it can know: that the body is a binary age v1 file
whose only recipients are X25519 keys, small enough, with a MAC line and a payload that can
hold at least one authenticated chunk. That is enough to refuse plaintext uploaded by mistake,
passphrase (scrypt) encryption that anyone who guesses the passphrase could open, plugin
recipients the team does not hold, and bodies built to cost the investigators' clients work.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final, Literal

import msgspec

from server.errors import InvalidInput

V1_LINE: Final = b"age-encryption.org/v1\n"
STANZA_MARK: Final = b"-> "
X25519_ARG_LINE: Final = b"-> X25519 "
MAC_MARK: Final = b"--- "
# Our own bound, not the spec's (its grammar has none): each X25519 stanza costs every
# investigator client a scalar multiplication before the header MAC can be checked.
MAX_HEADER_BYTES: Final = 8 * 1024
X25519_SHARE_BYTES: Final = 32
# ChaCha20-Poly1305 of the 16-byte file key: 16 bytes of ciphertext and a 16-byte tag.
X25519_BODY_BYTES: Final = 32
MAC_BYTES: Final = 32
PAYLOAD_NONCE_BYTES: Final = 16
CHUNK_TAG_BYTES: Final = 16
CHUNK_PLAINTEXT_BYTES: Final = 64 * 1024
# age §Recipient stanza: bodies are wrapped at 64 columns, the last line shorter.
BODY_COLUMNS: Final = 64

# rage (and so pyrage) always appends one random "grease" stanza after the real recipients to
# keep parsers tolerant of unknown types (age-core `grease_the_joint`). It cannot carry a file
# key anyone holds, so we accept exactly that shape and nothing looser: a tag of 1-8 visible
# characters plus "-grease", at most 4 arguments of 1-8 visible characters, a body of at most
# 100 bytes, and only as the last stanza.
_GREASE_TAG = re.compile(rb"[!-~]{1,8}-grease")
_GREASE_ARG = re.compile(rb"[!-~]{1,8}")
MAX_GREASE_ARGS: Final = 4
MAX_GREASE_BODY_BYTES: Final = 100

_BASE64_CHARS = re.compile(rb"[A-Za-z0-9+/]*")

Reason = Literal["size", "version", "header", "stanza", "recipients", "mac", "payload"]

# Fixed texts: an error body must never echo the bytes it refused.
_DETAILS: Final[dict[Reason, str]] = {
    "size": "The ciphertext is larger than allowed",
    "version": "The ciphertext is not a binary age v1 file",
    "header": "The age header is too large or not terminated",
    "stanza": "The age header has a stanza that is not an X25519 recipient",
    "recipients": "The age header has too few or too many recipients",
    "mac": "The age header MAC line is malformed",
    "payload": "The age payload is truncated or malformed",
}


class MalformedEnvelope(InvalidInput):
    """The ciphertext is not an age v1 file of the accepted form; `reason` is a fixed tag."""

    slug = "malformed-envelope"
    title = "The ciphertext is not an accepted age v1 file"

    def __init__(self, reason: Reason) -> None:
        super().__init__(_DETAILS[reason])
        self.reason: Reason = reason


class AgeForm(msgspec.Struct, frozen=True):
    recipients: int
    header_bytes: int
    payload_bytes: int


def _canonical_base64(text: bytes) -> bytes | None:
    # age: standard alphabet, no padding, and decoders MUST reject non-canonical encodings
    # (RFC 4648 §3.5), so each value has exactly one spelling and the bytes hashed and signed
    # by the client are the only bytes that can pass.
    if not _BASE64_CHARS.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return raw if base64.b64encode(raw).rstrip(b"=") == text else None


def _is_key(text: bytes, size: int) -> bool:
    raw = _canonical_base64(text)
    return raw is not None and len(raw) == size


class _Lines:
    def __init__(self, header: bytes, start: int) -> None:
        self._header = header
        self.position = start

    def next(self) -> bytes:
        end = self._header.find(b"\n", self.position)
        if end < 0:
            # No LF within the bound: the header is too long, or the body was cut short.
            raise MalformedEnvelope("header")
        line = self._header[self.position : end]
        self.position = end + 1
        return line


def _check_grease(arg_line: bytes, lines: _Lines) -> None:
    # Split on single spaces: an empty argument (two spaces, a trailing space) is malformed.
    tag, *arguments = arg_line[len(STANZA_MARK) :].split(b" ")
    if not _GREASE_TAG.fullmatch(tag) or len(arguments) > MAX_GREASE_ARGS:
        raise MalformedEnvelope("stanza")
    if not all(_GREASE_ARG.fullmatch(argument) for argument in arguments):
        raise MalformedEnvelope("stanza")
    body = b""
    max_lines = MAX_GREASE_BODY_BYTES * 4 // 3 // BODY_COLUMNS + 1
    for _ in range(max_lines):
        line = lines.next()
        body += line
        if len(line) < BODY_COLUMNS:
            break
        if len(line) > BODY_COLUMNS:
            raise MalformedEnvelope("stanza")
    else:
        raise MalformedEnvelope("stanza")
    raw = _canonical_base64(body)
    if raw is None or len(raw) > MAX_GREASE_BODY_BYTES:
        raise MalformedEnvelope("stanza")


def _check_payload(payload_bytes: int) -> None:
    # age §Payload: a 16-byte nonce, then 64 KiB chunks each sealed with a 16-byte tag; the
    # final chunk may be short but not empty unless the whole plaintext is empty. Lengths
    # that no encryptor produces mean a truncated or forged body.
    sealed = payload_bytes - PAYLOAD_NONCE_BYTES
    if sealed < CHUNK_TAG_BYTES:
        raise MalformedEnvelope("payload")
    last_chunk = sealed % (CHUNK_PLAINTEXT_BYTES + CHUNK_TAG_BYTES)
    if 0 < last_chunk < CHUNK_TAG_BYTES:
        raise MalformedEnvelope("payload")
    if last_chunk == CHUNK_TAG_BYTES and sealed != CHUNK_TAG_BYTES:
        raise MalformedEnvelope("payload")


def check_age_ciphertext(data: bytes, *, max_recipients: int, max_bytes: int) -> AgeForm:
    if max_recipients < 1 or max_bytes < 1:
        raise ValueError("limits must be positive")
    # Bounded first, so nothing below spends work on an oversized body.
    if len(data) > max_bytes:
        raise MalformedEnvelope("size")
    # Exact bytes, so armored (PEM-like) files, CRLF line endings and other versions fail here.
    if not data.startswith(V1_LINE):
        raise MalformedEnvelope("version")

    lines = _Lines(data[:MAX_HEADER_BYTES], len(V1_LINE))
    recipients = 0
    greased = False
    while True:
        line = lines.next()
        if line.startswith(b"---"):
            break
        if greased or not line.startswith(STANZA_MARK):
            raise MalformedEnvelope("stanza")
        if line.startswith(X25519_ARG_LINE):
            # age §X25519: exactly two arguments, the second a canonical 32-byte share, and
            # a body of exactly 32 bytes, which is always one 43-character line.
            if not _is_key(line[len(X25519_ARG_LINE) :], X25519_SHARE_BYTES):
                raise MalformedEnvelope("stanza")
            if not _is_key(lines.next(), X25519_BODY_BYTES):
                raise MalformedEnvelope("stanza")
            recipients += 1
            if recipients > max_recipients:
                raise MalformedEnvelope("recipients")
        else:
            _check_grease(line, lines)
            greased = True
    if recipients == 0:
        raise MalformedEnvelope("recipients")
    if not line.startswith(MAC_MARK) or not _is_key(line[len(MAC_MARK) :], MAC_BYTES):
        raise MalformedEnvelope("mac")

    header_bytes = lines.position
    payload_bytes = len(data) - header_bytes
    _check_payload(payload_bytes)
    return AgeForm(recipients=recipients, header_bytes=header_bytes, payload_bytes=payload_bytes)
