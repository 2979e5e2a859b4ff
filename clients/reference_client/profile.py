"""The local profile: everything the client keeps between runs, only ever on disk encrypted.

A seized phone must not give up the handle, the device key, the age identity or the session
(DESIGN.md §2), so the whole profile is one age file under a passphrase (scrypt, age v1), and
no byte of it is written in clear — not even to a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Final

import msgspec
from pyrage import DecryptError, EncryptError, x25519
from pyrage import passphrase as age_passphrase

from clients.reference_client.device import DeviceKeyPair, KeyKind

PROFILE_FILE_MODE: Final = 0o600
PROFILE_VERSION: Final = 1


class ProfileError(Exception):
    pass


class Profile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    server_url: str
    handle: str
    device_key_pem: str
    # pyrage `x25519.Identity` as text (AGE-SECRET-KEY-1...): decrypts what is sent to us.
    age_identity: str
    account_id: str | None = None
    role: str | None = None
    # Pinned at enrolment from the invite QR; a key directory not signed by it is refused.
    org_root_fingerprint: str | None = None
    session_token: str | None = None
    version: int = PROFILE_VERSION
    # The organisation root public key (base64), pinned once it matched the fingerprint above.
    root_public_key: str | None = None
    # A directory older than the last one accepted is a replay that may name removed keys.
    directory_version_seen: int | None = None
    # The last verified signed directory (wire JSON), so a report can be sealed offline.
    key_directory: str | None = None

    def __repr__(self) -> str:
        # Keys and tokens must not reach a log or a traceback through repr().
        return f"Profile(server_url={self.server_url!r}, account_id={self.account_id!r})"

    def device_key(self) -> DeviceKeyPair:
        return DeviceKeyPair.from_pem(self.device_key_pem.encode("ascii"))

    def identity(self) -> x25519.Identity:
        return x25519.Identity.from_str(self.age_identity)

    def age_recipient(self) -> str:
        return str(self.identity().to_public())


def new_profile(
    server_url: str,
    handle: str,
    *,
    key_kind: KeyKind = "p256",
    org_root_fingerprint: str | None = None,
) -> Profile:
    return Profile(
        server_url=server_url,
        handle=handle,
        device_key_pem=DeviceKeyPair.generate(key_kind).to_pem().decode("ascii"),
        age_identity=str(x25519.Identity.generate()),
        org_root_fingerprint=org_root_fingerprint,
    )


def save_profile(path: Path, profile: Profile, passphrase: str) -> None:
    if not passphrase:
        raise ProfileError("a passphrase is required")
    try:
        ciphertext: bytes = age_passphrase.encrypt(msgspec.json.encode(profile), passphrase)
    except EncryptError as error:
        raise ProfileError("could not encrypt the profile") from error
    _write_atomically(path, ciphertext)


def load_profile(path: Path, passphrase: str) -> Profile:
    try:
        ciphertext = path.read_bytes()
    except OSError as error:
        raise ProfileError("could not read the profile") from error
    try:
        plaintext: bytes = age_passphrase.decrypt(ciphertext, passphrase)
    except DecryptError:
        # One message for a wrong passphrase and a damaged file: the difference helps nobody
        # but someone guessing.
        raise ProfileError("wrong passphrase or damaged profile") from None
    try:
        return msgspec.json.decode(plaintext, type=Profile)
    except msgspec.MsgspecError:
        raise ProfileError("the profile is not in a format this client understands") from None


def _write_atomically(path: Path, data: bytes) -> None:
    # Same directory, so os.replace is an atomic rename: a crash leaves the old profile or the
    # new one, never half of one. O_EXCL + 0600 from the first byte: no window where another
    # user could open the file.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PROFILE_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PROFILE_FILE_MODE)  # the umask may only narrow it
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)
