"""People for end-to-end tests: each has a device key, an age key and real credentials, and
talks to the live server only through the reference client (the protocol's second
implementation), so the tests prove the documented protocol rather than shared code."""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pyotp
import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar

from clients.reference_client.api import Session, TiplineClient
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.keys import (
    Directory,
    DirectoryEntry,
    public_key_b64,
    publish_directory,
    sign_directory_with,
    verify_directory,
)
from server.identity import service


class FakeClock:
    """The server's TOTP clock in tests: real time plus whatever a test adds."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Actor:
    def __init__(self, world: World, handle: str, role: str) -> None:
        self.world = world
        self.handle = handle
        self.role = role
        self.password = secrets.token_urlsafe(18)
        self.device = DeviceKeyPair.generate()
        self.age_identity = pyrage.x25519.Identity.generate()
        self.client = world.client(self.device)
        self.seed: str | None = None
        self.account_id: UUID | None = None
        self.session: Session | None = None

    def totp(self, step_offset: int = 0) -> str:
        assert self.seed is not None
        return pyotp.TOTP(self.seed).at(self.world.clock() + 30 * step_offset)

    async def enrol(self, invite_code: str) -> None:
        enrolment = await self.client.enrol(
            invite_code, self.password, str(self.age_identity.to_public())
        )
        query = parse_qs(urlsplit(enrolment.otpauth_uri).query)
        self.seed = query["secret"][0]
        self.account_id = enrolment.account_id
        await self.client.confirm_enrolment(enrolment.account_id, self.totp())
        # That step is spent; the next login needs a newer one.
        self.world.next_step()

    async def login(self) -> Session:
        self.session = await self.client.login(self.handle, self.password, self.totp())
        return self.session

    def token(self) -> Session:
        assert self.session is not None
        return self.session


class World:
    """The live server plus helpers to populate it with enrolled, logged-in people."""

    def __init__(self, app: Litestar, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self.clock = FakeClock()
        self.identity: service.IdentityContext = app.state.identity
        self.identity.totp_clock = self.clock
        self._count = 0
        self._clients: list[TiplineClient] = []
        # Set by tests that publish key directories (the server must know the public half).
        self.root_key: Ed25519PrivateKey | None = None
        self.directory: Directory | None = None

    def client(self, device: DeviceKeyPair) -> TiplineClient:
        client = TiplineClient(self.base_url, device)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.__aexit__()

    def new_handle(self, role: str) -> str:
        self._count += 1
        return f"{role[:4]}-{self._count}-{secrets.token_hex(2)}"

    async def first_investigator(self) -> Actor:
        actor = Actor(self, self.new_handle("investigator"), "investigator")
        invite = await service.bootstrap_invite(self.identity, self.app.state.pool, actor.handle)
        await actor.enrol(invite.payload.code)
        await actor.login()
        return actor

    async def invited(self, by: Actor, role: str, *, login: bool = True) -> Actor:
        actor = Actor(self, self.new_handle(role), role)
        payload = await by.client.invite(by.token(), role, actor.handle)
        await actor.enrol(payload.code)
        if login:
            await actor.login()
        return actor

    async def publish_directory(self, by: Actor, people: list[Actor]) -> Directory:
        """Signs a new directory version with the test's root key and publishes it."""
        assert self.root_key is not None
        version = self.directory.version + 1 if self.directory else 1
        entries = [
            DirectoryEntry(
                account_id=person.account_id,
                role=person.role,  # type: ignore[arg-type]
                age_recipient=str(person.age_identity.to_public()),
                device_keys=[person.device.public_jwk()],
            )
            for person in people
            if person.account_id is not None
        ]
        signed = sign_directory_with(self.root_key, version, entries)
        await publish_directory(by.client, by.token(), signed)
        self.directory = verify_directory(signed, public_key_b64(self.root_key), None)
        return self.directory

    def next_step(self) -> None:
        """Moves to the next TOTP step, so the same account can log in again."""
        self.clock.advance(30)
