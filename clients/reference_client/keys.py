"""The organisation root key and the key directory it signs, written from the protocol.

The root key (Ed25519) lives offline, encrypted under a passphrase (age scrypt). It signs the
directory of investigators' and officers' age recipients and device keys; clients pin its
public key at enrolment and refuse any directory it did not sign or that goes backwards, so a
compromised server cannot make phones encrypt reports to keys of its choosing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, Literal
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyrage import DecryptError
from pyrage import passphrase as age_passphrase

from clients.reference_client.api import Session, TiplineClient, decode

# Domain separation: the root key signs nothing else that could be mistaken for a directory.
DIRECTORY_CONTEXT: Final = b"tipline-directory-v1\n"
ROOT_KEY_FILE_MODE: Final = 0o600
ED25519_PUBLIC_KEY_BYTES: Final = 32
ED25519_SIGNATURE_BYTES: Final = 64
MAX_ENTRIES: Final = 200
MAX_DEVICE_KEYS: Final = 4
MAX_DIRECTORY_BYTES: Final = 192 * 1024
KEYS_PATH: Final = "/v1/keys"


class DirectoryError(Exception):
    pass


class DirectoryEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: UUID
    age_recipient: str
    device_keys: Annotated[
        list[dict[str, str]], msgspec.Meta(min_length=1, max_length=MAX_DEVICE_KEYS)
    ]
    role: Literal["investigator", "officer"]


class Directory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entries: Annotated[list[DirectoryEntry], msgspec.Meta(max_length=MAX_ENTRIES)]
    issued_at: str
    version: Annotated[int, msgspec.Meta(ge=1)]

    def investigator_recipients(self) -> list[str]:
        return [e.age_recipient for e in self.entries if e.role == "investigator"]


class SignedDirectory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The wire form: `PUT /v1/keys` body and `GET /v1/keys` answer."""

    version: int
    # Standard base64 with padding of the exact signed bytes.
    directory: str
    # base64url without padding of the 64-byte Ed25519 signature.
    signature: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise DirectoryError("the signature is not base64url") from None
    if _b64url(raw) != value:
        raise DirectoryError("the signature is not canonical base64url")
    return raw


def _public_key(public_key_b64: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise DirectoryError("the root public key is not base64") from None
    if len(raw) != ED25519_PUBLIC_KEY_BYTES:
        raise DirectoryError("the root public key is not 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def root_fingerprint(public_key_b64: str) -> str:
    """What an invite carries and a phone pins: SHA-256 of the raw key, base64, no padding."""
    try:
        raw = base64.b64decode(public_key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise DirectoryError("the root public key is not base64") from None
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def check_root_key(public_key_b64: str, pinned_fingerprint: str) -> None:
    """Refuse a root public key that is not the one whose fingerprint was pinned at enrolment."""
    if root_fingerprint(public_key_b64) != pinned_fingerprint:
        raise DirectoryError("the root public key does not match the pinned fingerprint")


def init_root(path: Path, passphrase: str) -> str:
    """Make the root key and store it encrypted; the base64 public key is returned for
    TIPLINE_ROOT_PUBLIC_KEY. An existing file is never overwritten: losing a root key means
    re-enrolling every device."""
    if not passphrase:
        raise DirectoryError("a passphrase is required")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ciphertext: bytes = age_passphrase.encrypt(pem, passphrase)
    # O_EXCL + 0600 from the first byte: no window where the file exists with wider access.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ROOT_KEY_FILE_MODE)
    except FileExistsError:
        raise DirectoryError(f"{path} exists; a root key is never overwritten") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), ROOT_KEY_FILE_MODE)  # the umask may only narrow it
            handle.write(ciphertext)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        # A half-written key file would later fail to decrypt: better no file at all.
        path.unlink(missing_ok=True)
        raise
    return public_key_b64(key)


def load_root_key(path: Path, passphrase: str) -> Ed25519PrivateKey:
    try:
        plaintext: bytes = age_passphrase.decrypt(path.read_bytes(), passphrase)
    except OSError as error:
        raise DirectoryError("could not read the root key file") from error
    except DecryptError:
        raise DirectoryError("wrong passphrase or damaged root key file") from None
    key = serialization.load_pem_private_key(plaintext, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise DirectoryError("the root key file does not hold an Ed25519 key")
    return key


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_directory(
    version: int, entries: Sequence[DirectoryEntry], issued_at: str | None = None
) -> bytes:
    """The canonical bytes the root key signs: sorted keys, no whitespace."""
    directory = Directory(
        entries=list(entries), issued_at=issued_at or now_rfc3339(), version=version
    )
    return msgspec.json.encode(directory, order="sorted")


def sign_bytes(key: Ed25519PrivateKey, directory_bytes: bytes) -> SignedDirectory:
    """Sign exactly these bytes; the wire version is read from inside them."""
    directory = _parse(directory_bytes)
    return SignedDirectory(
        version=directory.version,
        directory=base64.b64encode(directory_bytes).decode("ascii"),
        signature=_b64url(key.sign(DIRECTORY_CONTEXT + directory_bytes)),
    )


def sign_directory_with(
    key: Ed25519PrivateKey,
    version: int,
    entries: Sequence[DirectoryEntry],
    issued_at: str | None = None,
) -> SignedDirectory:
    return sign_bytes(key, encode_directory(version, entries, issued_at))


def sign_directory(
    root_key_path: Path,
    passphrase: str,
    version: int,
    entries: Sequence[DirectoryEntry],
    issued_at: str | None = None,
) -> SignedDirectory:
    return sign_directory_with(
        load_root_key(root_key_path, passphrase), version, entries, issued_at
    )


def _parse(directory_bytes: bytes) -> Directory:
    try:
        return msgspec.json.decode(directory_bytes, type=Directory)
    except msgspec.MsgspecError:
        raise DirectoryError("the directory is not in the directory format") from None


def verify_directory(
    signed: SignedDirectory, root_public_key_b64: str, last_seen_version: int | None
) -> Directory:
    """The directory, if the pinned root key signed it and it does not go backwards.

    The same version as the last one accepted is fine (a re-fetch); a lower one is a replay of
    a directory that may still name keys since removed.
    """
    root = _public_key(root_public_key_b64)
    try:
        directory_bytes = base64.b64decode(signed.directory, validate=True)
    except (binascii.Error, ValueError):
        raise DirectoryError("the directory is not base64") from None
    if len(directory_bytes) > MAX_DIRECTORY_BYTES:
        raise DirectoryError("the directory is too large")
    signature = _b64url_decode(signed.signature)
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise DirectoryError("the signature is not 64 bytes")
    try:
        root.verify(signature, DIRECTORY_CONTEXT + directory_bytes)
    except InvalidSignature:
        raise DirectoryError("the directory is not signed by the organisation root key") from None
    directory = _parse(directory_bytes)
    # One spelling only (sorted keys, no whitespace, no duplicate keys): what this client reads
    # is then what every other client and the server read from the same signed bytes.
    if msgspec.json.encode(directory, order="sorted") != directory_bytes:
        raise DirectoryError("the directory is not in canonical form")
    if directory.version != signed.version:
        raise DirectoryError("the version does not match the signed directory")
    if last_seen_version is not None and directory.version < last_seen_version:
        raise DirectoryError(
            f"directory version {directory.version} is older than {last_seen_version},"
            " the last one accepted"
        )
    return directory


async def fetch_directory(client: TiplineClient, session: Session | str) -> SignedDirectory:
    return decode(await client.call("GET", KEYS_PATH, session), SignedDirectory)


async def publish_directory(
    client: TiplineClient, session: Session | str, signed: SignedDirectory
) -> SignedDirectory:
    response = await client.call("PUT", KEYS_PATH, session, json=msgspec.to_builtins(signed))
    return decode(response, SignedDirectory)
