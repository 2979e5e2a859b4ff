"""The installation's secret key and the purpose-bound keys derived from it.

One 256-bit key lives in a file outside the database (mode 0600). Every secret the server needs
is derived from it with HKDF-SHA256 under a distinct label, so a key used for one purpose can
never be confused with another, and a stolen database without this file yields no pepper, no
TOTP seed and no reversible throttle key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32


class KeyringError(RuntimeError):
    """The secret key file is missing or malformed; the message never contains key material."""


class Keyring:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY_BYTES:
            raise KeyringError(f"the secret key must be {KEY_BYTES} bytes")
        self._master = master_key
        self.password_pepper = self._derive(b"tipline password pepper v1")
        self.totp_seal_key = self._derive(b"tipline totp seed seal v1")
        self._handle_key = self._derive(b"tipline login throttle handle v1")
        self._source_key = self._derive(b"tipline source address v1")
        # Signs the audit chain's checkpoints. Whoever holds the key file can re-sign history,
        # so checkpoints are also exported off the server (`tipline audit checkpoint`).
        self.audit_signing_key = Ed25519PrivateKey.from_private_bytes(
            self._derive(b"tipline audit checkpoint signing v1")
        )

    def _derive(self, label: bytes) -> bytes:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label)
        return hkdf.derive(self._master)

    def handle_key(self, handle: str) -> bytes:
        """A stable, keyed stand-in for a handle, so throttle rows name no one."""
        return hmac.new(self._handle_key, handle.encode(), hashlib.sha256).digest()

    def source_key(self, address: str) -> bytes:
        """A keyed hash of a client address: no IP address is ever stored in clear."""
        return hmac.new(self._source_key, address.encode(), hashlib.sha256).digest()


def generate_key_file(path: Path) -> None:
    """Writes a new random key; refuses to overwrite one (that would orphan every TOTP seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(encoded)


def load_keyring(path: Path) -> Keyring:
    try:
        mode = path.stat().st_mode & 0o777
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyringError(f"no secret key at {path}: run `tipline keygen`") from None
    if mode & 0o077:
        raise KeyringError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except binascii.Error:
        raise KeyringError(f"{path} does not hold a base64 key") from None
    return Keyring(key)
