"""Key directory types: the wire form, and the signed directory it carries.

The directory is signed as bytes by an offline key, so its JSON has exactly one spelling
(sorted keys, no whitespace); these Structs decode it strictly and bound every size before any
per-entry work is done.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal
from uuid import UUID

import msgspec

MAX_ENTRIES: Final = 200
MAX_DEVICE_KEYS: Final = 4
# 200 entries of 4 P-256 keys each encode to about 125 KiB; the rest is slack, not a target.
MAX_DIRECTORY_BYTES: Final = 192 * 1024
MAX_DIRECTORY_BASE64: Final = 4 * -(-MAX_DIRECTORY_BYTES // 3)
# The PUT body: the base64 directory plus the version and signature members.
MAX_PUBLISH_BODY_BYTES: Final = MAX_DIRECTORY_BASE64 + 1024
# PostgreSQL `integer`, and exact in every JSON implementation.
MAX_VERSION: Final = 2**31 - 1
ED25519_SIGNATURE_BYTES: Final = 64

Version = Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]
# Standard base64 with padding (contract: binary payloads); canonical form is checked on decode.
DirectoryBase64 = Annotated[
    str,
    msgspec.Meta(min_length=4, max_length=MAX_DIRECTORY_BASE64, pattern=r"^[A-Za-z0-9+/]+={0,2}$"),
]
# base64url without padding of a 64-byte Ed25519 signature: always 86 characters.
SignatureB64Url = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{86}$")]
AgeRecipient = Annotated[str, msgspec.Meta(pattern="^age1[02-9ac-hj-np-z]{58}$")]
# RFC 3339, UTC, second precision: the string the root key signed, never re-formatted.
IssuedAt = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
]
# A public JWK is flat and small; which members it may hold is `parse_device_jwk`'s rule.
Jwk = Annotated[
    dict[Annotated[str, msgspec.Meta(max_length=16)], Annotated[str, msgspec.Meta(max_length=128)]],
    msgspec.Meta(max_length=8),
]
# Only those who receive content hold directory keys: operatives never do.
DirectoryRole = Literal["investigator", "officer"]


class SignedDirectory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`PUT /v1/keys` body and `GET /v1/keys` answer."""

    version: Version
    directory: DirectoryBase64
    signature: SignatureB64Url


class DirectoryEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    account_id: UUID
    age_recipient: AgeRecipient
    device_keys: Annotated[list[Jwk], msgspec.Meta(min_length=1, max_length=MAX_DEVICE_KEYS)]
    role: DirectoryRole


class Directory(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The signed content; field names in the order the canonical encoding sorts them."""

    entries: Annotated[list[DirectoryEntry], msgspec.Meta(max_length=MAX_ENTRIES)]
    issued_at: IssuedAt
    version: Version
