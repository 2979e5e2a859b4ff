"""Evidence fixtures: a real S3-compatible server (moto's standalone server on loopback), an
installation with an investigator and two operatives, and a small tus client that speaks the
protocol over real HTTP with DPoP, written from the tus 1.0.0 text."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar.di import Provide

from clients.reference_client.api import TiplineClient
from clients.reference_client.keys import public_key_b64
from server.envelope.age_header import check_age_ciphertext
from server.evidence.service import EvidenceContext
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import TestDatabase, free_port, world_with

# moto accepts any credentials; botocore's default chain reads these.
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
PART = 5 * 2**20


def age_header(seed: bytes | None = None) -> bytes:
    """The header of an age v1 file to one X25519 recipient (random or seeded key material)."""
    material = hashlib.shake_256(seed).digest(96) if seed is not None else os.urandom(96)

    def key(index: int) -> bytes:
        return base64.b64encode(material[32 * index : 32 * index + 32]).rstrip(b"=")

    stanza = b"-> X25519 " + key(0) + b"\n" + key(1) + b"\n"
    return b"age-encryption.org/v1\n" + stanza + b"--- " + key(2) + b"\n"


def age_blob(size: int) -> bytes:
    """Random bytes in the form of an age v1 file of exactly `size` bytes: the server checks the
    form (SEC-FILE-03) and cannot decrypt, so random payload bytes pass as ciphertext."""
    header = age_header()
    data = header + os.urandom(size - len(header))
    # A size no age encryptor produces would be refused; tests must pick valid ones.
    check_age_ciphertext(data, max_recipients=1, max_bytes=size)
    return data


class MotoServer(msgspec.Struct, frozen=True):
    url: str


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **S3_CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield MotoServer(url=url)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def make_bucket(url: str) -> str:
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    bucket = f"evidence-{secrets.token_hex(6)}"
    async with get_session().create_client("s3", endpoint_url=url, region_name="us-east-1") as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
async def backend_settings(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    if request.param == "local":
        return settings
    server: MotoServer = request.getfixturevalue("moto_server")
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    bucket = await make_bucket(server.url)
    return msgspec.structs.replace(
        settings,
        evidence_storage="s3",
        evidence_s3_endpoint_url=server.url,
        evidence_s3_bucket=bucket,
        evidence_s3_part_bytes=PART,
    )


class Desk(msgspec.Struct):
    world: World
    investigator: Actor
    operative: Actor
    other_operative: Actor
    admin_url: str

    @property
    def evidence(self) -> EvidenceContext:
        provider = self.world.app.dependencies["evidence"]
        assert isinstance(provider, Provide)
        context: EvidenceContext = provider.dependency()
        return context


@pytest.fixture
async def desk(backend_settings: Settings, database: TestDatabase) -> AsyncIterator[Desk]:
    root_key = Ed25519PrivateKey.generate()
    async with world_with(backend_settings, root_public_key=public_key_b64(root_key)) as world:
        world.root_key = root_key
        investigator = await world.first_investigator()
        operative = await world.invited(investigator, "operative")
        other = await world.invited(investigator, "operative")
        yield Desk(
            world=world,
            investigator=investigator,
            operative=operative,
            other_operative=other,
            admin_url=database.admin_url,
        )


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def checksum(chunk: bytes) -> str:
    return "sha256 " + base64.b64encode(hashlib.sha256(chunk).digest()).decode()


class Tus:
    """One person's tus requests, each with a fresh DPoP proof for exactly that request."""

    def __init__(self, actor: Actor, client: TiplineClient | None = None) -> None:
        self.actor = actor
        # Another server process (a restarted one, or another replica) may be addressed.
        self.client = client or actor.client

    def auth(self, method: str, path: str) -> dict[str, str]:
        token = self.actor.token().access_token
        return {
            "Authorization": f"DPoP {token}",
            "DPoP": self.client.proof(method, path, access_token=token),
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        content: Any = None,
        tus: bool = True,
    ) -> httpx.Response:
        sent = {**self.auth(method, path), **(headers or {})}
        if tus:
            sent.setdefault("Tus-Resumable", "1.0.0")
        return await self.client._http.request(method, path, headers=sent, content=content)

    async def create(
        self,
        length: int,
        digest: str,
        *,
        attachment_id: UUID | None = None,
        extra: dict[str, str] | None = None,
        content: Any = None,
    ) -> tuple[UUID, httpx.Response]:
        attachment_id = attachment_id or uuid4()
        metadata = (
            f"attachment_id {b64(str(attachment_id))},ciphertext_length {b64(str(length))},"
            f"ciphertext_sha256 {b64(digest)}"
        )
        headers = {"Upload-Length": str(length), "Upload-Metadata": metadata, **(extra or {})}
        if content is not None:
            headers["Content-Type"] = "application/offset+octet-stream"
        response = await self.request("POST", "/v1/uploads", headers=headers, content=content)
        return attachment_id, response

    async def head(self, attachment_id: UUID) -> httpx.Response:
        return await self.request("HEAD", f"/v1/uploads/{attachment_id}")

    async def offset(self, attachment_id: UUID) -> int:
        response = await self.head(attachment_id)
        assert response.status_code == 200, response.status_code
        return int(response.headers["Upload-Offset"])

    async def patch(
        self,
        attachment_id: UUID,
        offset: int,
        content: Any,
        *,
        with_checksum: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **(headers or {}),
        }
        if with_checksum is not None:
            sent["Upload-Checksum"] = with_checksum
        return await self.request(
            "PATCH", f"/v1/uploads/{attachment_id}", headers=sent, content=content
        )

    async def download(self, attachment_id: UUID, range_: str | None = None) -> httpx.Response:
        headers = {"Range": range_} if range_ else {}
        return await self.request(
            "GET", f"/v1/attachments/{attachment_id}", headers=headers, tus=False
        )

    async def custody(self, attachment_id: UUID) -> httpx.Response:
        return await self.request("GET", f"/v1/attachments/{attachment_id}/custody", tus=False)


async def stored_object_exists(desk: Desk, attachment_id: UUID) -> bool:
    """Whether the backend still holds the attachment's object (looked up by its storage key)."""
    from server.evidence.storage import LocalStorage, S3Storage

    conn = await asyncpg.connect(desk.admin_url)
    try:
        key = await conn.fetchval(
            "SELECT storage_key FROM tipline.attachments WHERE id = $1", attachment_id
        )
    finally:
        await conn.close()
    assert key is not None
    storage = desk.evidence.storage
    if isinstance(storage, LocalStorage):
        return Path(storage.path(key)).exists()
    assert isinstance(storage, S3Storage)
    s3 = await storage._s3()
    listed = await s3.list_objects_v2(Bucket=storage.bucket, Prefix=storage.object_name(key))
    uploads = await s3.list_multipart_uploads(
        Bucket=storage.bucket, Prefix=storage.object_name(key)
    )
    return bool(listed.get("Contents")) or bool(uploads.get("Uploads"))


async def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
