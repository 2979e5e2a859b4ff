"""Identity wire types. Inputs forbid unknown fields and bound every string (SEC-AUTHZ-04)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from server.identity.permissions import Role

Handle = Annotated[str, msgspec.Meta(pattern="^[a-z0-9][a-z0-9_.-]{2,31}$")]
# Length is bounded here so a megabyte "password" never reaches the hasher; the policy's own
# limit (256 code points after NFC) is checked by the service with a stated reason.
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
# ASCII digits only, exactly six: checked before pyotp, which would NFKC-normalise full-width
# digits into a match (security-requirements §4). max_length stops "123456\n" matching `$`.
TotpCode = Annotated[str, msgspec.Meta(pattern="^[0-9]{6}$", max_length=6)]
InviteCode = Annotated[str, msgspec.Meta(pattern="^[A-Z2-7]{32}$")]
AgeRecipient = Annotated[str, msgspec.Meta(pattern="^age1[02-9ac-hj-np-z]{58}$")]


class Input(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every request body: unknown fields are refused, never silently dropped."""


class InviteRequest(Input):
    role: Role
    handle: Handle


class InvitePayload(msgspec.Struct, frozen=True):
    """What the invite QR code carries to the new device."""

    server_url: str
    code: str
    # The organisation root public key (base64, 32 bytes) and its fingerprint: the new device
    # pins the key and trusts no key directory it has not signed.
    root_public_key: str | None
    root_key_fingerprint: str | None


class InviteCreated(msgspec.Struct, frozen=True):
    invite_id: UUID
    role: Role
    handle: str
    expires_at: datetime
    payload: InvitePayload


class EnrolmentRequest(Input):
    invite_code: InviteCode
    password: Password
    # A JWK is flat: string members only, and few of them.
    device_key: Annotated[
        dict[str, Annotated[str, msgspec.Meta(max_length=512)]], msgspec.Meta(max_length=16)
    ]
    age_recipient: AgeRecipient


class EnrolmentStarted(msgspec.Struct, frozen=True):
    account_id: UUID
    handle: str
    role: Role
    otpauth_uri: str


class EnrolmentConfirmation(Input):
    account_id: UUID
    totp_code: TotpCode


class LoginRequest(Input):
    handle: Handle
    password: Password
    totp_code: TotpCode


class AccountView(msgspec.Struct, frozen=True):
    id: UUID
    handle: str
    role: Role
    status: Literal["enrolling", "active", "suspended"]
    created_at: datetime


class SessionCreated(msgspec.Struct, frozen=True):
    access_token: str
    token_type: Literal["DPoP"]
    # The device this session is bound to, so its holder can revoke it if the phone is lost.
    device_id: UUID
    expires_at: datetime
    idle_timeout_s: int
    account: AccountView


class AccountAlarms(msgspec.Struct, frozen=True):
    id: UUID
    handle: str
    role: Role
    status: Literal["enrolling", "active", "suspended"]
    created_at: datetime
    duress_at: datetime | None
    locked_at: datetime | None


class AccountList(msgspec.Struct, frozen=True):
    accounts: list[AccountAlarms]


class ResetIssued(msgspec.Struct, frozen=True):
    account_id: UUID
    expires_at: datetime
    payload: InvitePayload


class DuressPasswordRequest(Input):
    password: Password
    duress_password: Password
