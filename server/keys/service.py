"""Key directory rules: accept only what the offline root key signed, only forward, only true.

The server is not trusted with keys (DESIGN §2-3): clients verify the root signature
themselves. The server's own checks exist so that a stolen investigator session cannot replay
an old, validly signed directory (versions only go up), and so that a signing mistake — a wrong
recipient, a suspended account, an operative named as an investigator — is caught before phones
start encrypting reports to it.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from datetime import datetime
from typing import Final
from uuid import UUID

import msgspec
import nacl.bindings
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from server import db
from server.audit.actions import AuditAction
from server.audit.service import record
from server.errors import (
    BadRequest,
    Conflict,
    FieldProblem,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from server.identity.dpop import InvalidDeviceKey, parse_device_jwk
from server.identity.principal import Principal, acting_as
from server.keys import queries
from server.keys.schemas import (
    ED25519_SIGNATURE_BYTES,
    MAX_DIRECTORY_BYTES,
    Directory,
    DirectoryEntry,
    SignedDirectory,
)
from server.wire import decode_json

__all__ = [
    "DIRECTORY_CONTEXT",
    "Directory",
    "DirectoryCache",
    "DirectoryEntry",
    "InvalidDirectory",
    "StaleDirectory",
    "current_directory",
    "current_version",
    "investigator_count",
    "investigator_recipients",
    "publish",
    "root_public_key",
    "signed_current",
    "verify_signed",
]

# Domain separation: a root signature over a directory can never be replayed as a signature
# over anything else the root key might one day sign.
DIRECTORY_CONTEXT: Final = b"tipline-directory-v1\n"
ED25519_PUBLIC_KEY_BYTES: Final = 32
INVESTIGATOR: Final = "investigator"


class StaleDirectory(Conflict):
    slug, title = "stale-directory", "A directory with this version or a newer one exists"

    def __init__(self, current_version: int) -> None:
        super().__init__(
            f"The current directory version is {current_version}; sign a higher one",
            extensions={"current_version": current_version},
        )
        self.current_version = current_version


class InvalidDirectory(InvalidInput):
    slug, title = "invalid-directory", "The key directory is not acceptable"


def root_public_key(configured: str | None) -> Ed25519PublicKey:
    if configured is None:
        raise ServiceUnavailable("no organisation root key is configured")
    try:
        raw = base64.b64decode(configured, validate=True)
    except binascii.Error:
        raw = b""
    # libsodium refuses small-order and non-canonical points, which OpenSSL would load: a
    # small-order "root key" would let one signature verify for many directories.
    if len(raw) != ED25519_PUBLIC_KEY_BYTES or not nacl.bindings.crypto_core_ed25519_is_valid_point(
        raw
    ):
        raise ServiceUnavailable("the organisation root key is misconfigured")
    return Ed25519PublicKey.from_public_bytes(raw)


def _b64_canonical(value: str) -> bytes:
    # One spelling per byte string: non-zero padding bits would let the same directory travel
    # under many encodings.
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise InvalidDirectory("The directory is not base64") from None
    if base64.b64encode(raw).decode("ascii") != value:
        raise InvalidDirectory("The directory is not canonical base64")
    return raw


def _b64url_canonical(value: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise InvalidDirectory("The signature is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != value:
        raise InvalidDirectory("The signature is not canonical base64url")
    return raw


def verify_signed(
    root: Ed25519PublicKey, signed: SignedDirectory
) -> tuple[bytes, bytes, Directory]:
    """The directory bytes, the signature and the parsed directory, once the root key vouches
    for them. Nothing inside the directory is parsed before the signature verifies."""
    raw = _b64_canonical(signed.directory)
    signature = _b64url_canonical(signed.signature)
    if len(raw) > MAX_DIRECTORY_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
        raise InvalidDirectory("The directory or its signature has the wrong size")
    try:
        root.verify(signature, DIRECTORY_CONTEXT + raw)
    except InvalidSignature:
        raise InvalidDirectory(
            "The directory signature does not verify under the organisation root key"
        ) from None
    directory = parse_directory(raw)
    if directory.version != signed.version:
        raise InvalidDirectory(
            "The version does not match the one inside the signed directory",
            fields=[FieldProblem(path="$.version", message="differs from the signed version")],
        )
    return raw, signature, directory


def parse_directory(raw: bytes) -> Directory:
    try:
        directory = decode_json(raw, Directory)
    except (InvalidInput, BadRequest) as refused:
        raise InvalidDirectory(
            "The signed directory does not follow the directory format", fields=refused.fields
        ) from None
    # Exactly one byte string per directory: no whitespace, sorted keys, no duplicate keys, so
    # every client's parser reads the same thing the root key signed.
    if msgspec.json.encode(directory, order="sorted") != raw:
        raise InvalidDirectory("The signed directory is not in canonical form")
    try:
        datetime.fromisoformat(directory.issued_at)
    except ValueError:
        raise InvalidDirectory(
            "The directory's issued_at is not a real time",
            fields=[FieldProblem(path="$.issued_at", message="not a valid RFC 3339 time")],
        ) from None
    _check_shape(directory)
    return directory


def _entry_problem(index: int, message: str) -> InvalidDirectory:
    return InvalidDirectory(
        f"Directory entry {index}: {message}",
        fields=[FieldProblem(path=f"$.entries[{index}]", message=message)],
    )


def _check_shape(directory: Directory) -> None:
    seen = Counter(entry.account_id for entry in directory.entries)
    for index, entry in enumerate(directory.entries):
        if seen[entry.account_id] > 1:
            raise _entry_problem(index, "names an account that another entry names too")
        thumbprints: set[str] = set()
        for jwk in entry.device_keys:
            try:
                key = parse_device_jwk(jwk)
            except InvalidDeviceKey as refused:
                raise _entry_problem(index, refused.detail) from None
            if key.jwk != jwk:
                raise _entry_problem(index, "a device key must hold only its RFC 7638 members")
            thumbprints.add(key.thumbprint)
        if len(thumbprints) != len(entry.device_keys):
            raise _entry_problem(index, "lists one device key twice")
    # A directory without an investigator would leave operatives nobody to encrypt to.
    if investigator_count(directory) == 0:
        raise InvalidDirectory("The directory names no investigator")


async def _check_accounts(conn: db.Connection, directory: Directory) -> None:
    ids = [entry.account_id for entry in directory.entries]
    accounts = {account.id: account for account in await queries.entry_accounts(conn, ids)}
    live: dict[UUID, set[str]] = {}
    for device in await queries.live_device_thumbprints(conn, ids):
        live.setdefault(device.account_id, set()).add(device.thumbprint)
    for index, entry in enumerate(directory.entries):
        account = accounts.get(entry.account_id)
        if account is None:
            raise _entry_problem(index, "names no existing account")
        if account.status != "active":
            raise _entry_problem(index, "names an account that is not active")
        if account.role != entry.role:
            raise _entry_problem(index, "the role is not the account's role")
        if account.age_recipient != entry.age_recipient:
            raise _entry_problem(index, "the age recipient is not the one the account enrolled")
        registered = live.get(entry.account_id, set())
        for jwk in entry.device_keys:
            if parse_device_jwk(jwk).thumbprint not in registered:
                raise _entry_problem(index, "a device key is not a live device of the account")


async def publish(
    pool: db.Pool, principal: Principal, configured_root_key: str | None, signed: SignedDirectory
) -> SignedDirectory:
    try:
        return await _publish(pool, principal, configured_root_key, signed)
    except (InvalidInput, Conflict) as refused:
        # A refused directory may be an attack on the key directory: keep a record of it.
        async with acting_as(pool, principal) as conn:
            await record(
                conn,
                AuditAction.KEYS_DIRECTORY_REFUSED,
                actor_id=principal.account_id,
                actor_role=principal.role,
                subject_type="key_directory",
                subject_id=str(signed.version),
                detail={"reason": refused.slug},
            )
        raise


async def _publish(
    pool: db.Pool, principal: Principal, configured_root_key: str | None, signed: SignedDirectory
) -> SignedDirectory:
    root = root_public_key(configured_root_key)
    raw, signature, directory = verify_signed(root, signed)
    async with acting_as(pool, principal) as conn:
        await queries.lock_directories(conn)
        current = await queries.current_directory(conn)
        if current is not None and directory.version <= current.version:
            raise StaleDirectory(current.version)
        await _check_accounts(conn, directory)
        if principal.duress:
            # A duress session must look normal and change nothing (DESIGN §5): every check
            # above ran and answered as usual; nothing is stored.
            return signed
        await queries.insert_directory(
            conn, directory.version, raw, signature, principal.account_id
        )
        await record(
            conn,
            AuditAction.KEYS_DIRECTORY_PUBLISHED,
            actor_id=principal.account_id,
            actor_role=principal.role,
            subject_type="key_directory",
            subject_id=str(directory.version),
            detail={
                "version": directory.version,
                "entries": len(directory.entries),
                "investigators": investigator_count(directory),
            },
        )
    return signed


async def signed_current(pool: db.Pool, principal: Principal) -> SignedDirectory:
    async with acting_as(pool, principal) as conn:
        stored = await queries.current_directory(conn)
    if stored is None:
        raise NotFound("No key directory has been published")
    return SignedDirectory(
        version=stored.version,
        directory=base64.b64encode(stored.directory).decode("ascii"),
        signature=base64.urlsafe_b64encode(stored.signature).rstrip(b"=").decode("ascii"),
    )


async def current_directory(conn: db.Connection) -> Directory | None:
    """The newest directory, for capabilities that check what a client encrypted to. Only
    directories that verified under the root key were ever stored."""
    stored = await queries.current_directory(conn)
    if stored is None:
        return None
    return msgspec.json.decode(stored.directory, type=Directory)


class DirectoryCache:
    """Published directories by version, for one database (one app, one pool).

    A stored directory never changes (0004_keys.sql grants no UPDATE), so a version once read
    can be kept: intake checks every report against the version its phone encrypted to.
    """

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._by_version: dict[int, Directory] = {}

    def cached(self, version: int) -> Directory | None:
        """The directory published as `version` if it has been read before; no round trip."""
        return self._by_version.get(version)

    async def at(self, conn: db.Connection, version: int) -> Directory | None:
        """The directory published as `version`, or None when there is no such version."""
        cached = self._by_version.get(version)
        if cached is not None:
            return cached
        raw = await queries.directory_at(conn, version)
        if raw is None:
            return None
        directory = msgspec.json.decode(raw, type=Directory)
        if len(self._by_version) >= self._size:
            del self._by_version[min(self._by_version)]
        self._by_version[version] = directory
        return directory


async def current_version(conn: db.Connection) -> int | None:
    return await queries.current_version(conn)


def investigator_count(directory: Directory) -> int:
    return sum(1 for entry in directory.entries if entry.role == INVESTIGATOR)


def investigator_recipients(directory: Directory) -> list[str]:
    return [entry.age_recipient for entry in directory.entries if entry.role == INVESTIGATOR]
