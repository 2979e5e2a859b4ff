"""What a phone does, step by step, as library calls the CLI (and tests) drive."""

from __future__ import annotations

from uuid import UUID

import msgspec

from clients.reference_client.api import Account, Enrolment, TiplineClient
from clients.reference_client.profile import Profile, new_profile


async def start_enrolment(
    server_url: str, invite_code: str, password: str, root_fingerprint: str | None = None
) -> tuple[Profile, Enrolment]:
    """Makes the device key and age identity here, on the device, then redeems the invite.

    The private keys never leave this process except inside the passphrase-encrypted profile.
    """
    profile = new_profile(server_url, handle="", org_root_fingerprint=root_fingerprint)
    async with TiplineClient(server_url, profile.device_key()) as client:
        enrolment = await client.enrol(invite_code, password, profile.age_recipient())
    profile = msgspec.structs.replace(
        profile,
        handle=enrolment.handle,
        account_id=str(enrolment.account_id),
        role=enrolment.role,
    )
    return profile, enrolment


async def finish_enrolment(profile: Profile, totp_code: str) -> Account:
    assert profile.account_id is not None
    async with TiplineClient(profile.server_url, profile.device_key()) as client:
        return await client.confirm_enrolment(UUID(profile.account_id), totp_code)


async def login(profile: Profile, password: str, totp_code: str) -> Profile:
    async with TiplineClient(profile.server_url, profile.device_key()) as client:
        session = await client.login(profile.handle, password, totp_code)
    return msgspec.structs.replace(profile, session_token=session.access_token)


async def whoami(profile: Profile) -> Account:
    if profile.session_token is None:
        raise LookupError("not logged in")
    async with TiplineClient(profile.server_url, profile.device_key()) as client:
        return await client.me(profile.session_token)


async def logout(profile: Profile) -> Profile:
    if profile.session_token is not None:
        async with TiplineClient(profile.server_url, profile.device_key()) as client:
            await client.logout(profile.session_token)
    return msgspec.structs.replace(profile, session_token=None)
