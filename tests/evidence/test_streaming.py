"""Large uploads stream through bounded buffers, a connection killed mid-body resumes from the
server's offset, and the off-the-shelf tuspy client speaks to the endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pytest
import requests
from tusclient.client import TusClient
from tusclient.uploader.uploader import Uploader

from clients.reference_client.api import TiplineClient
from clients.reference_client.device import make_proof
from tests.conftest import LiveServer
from tests.evidence.conftest import Desk, Tus, age_header, wait_for

MiB = 2**20


HEADER = age_header(b"streaming")


def pattern(index: int) -> bytes:
    """Deterministic 1 MiB blocks, so a large upload can be re-created instead of kept; the
    first starts with an age header (the server refuses anything else, SEC-FILE-03)."""
    block = hashlib.shake_256(index.to_bytes(8, "big")).digest(MiB)
    return HEADER + block[len(HEADER) :] if index == 0 else block


def digest_of(blocks: int) -> str:
    hasher = hashlib.sha256()
    for index in range(blocks):
        hasher.update(pattern(index))
    return hasher.hexdigest()


async def generated(blocks: int) -> AsyncIterator[bytes]:
    for index in range(blocks):
        yield pattern(index)


async def test_a_64_mib_upload_streams_without_holding_the_body(desk: Desk) -> None:
    blocks = 64
    tus = Tus(desk.operative)
    digest = digest_of(blocks)
    attachment_id, created = await tus.create(blocks * MiB, digest)
    assert created.status_code == 201
    tracemalloc.start()
    try:
        done = await tus.patch(attachment_id, 0, generated(blocks))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done.status_code == 204, done.text
    # Client, server and storage share this process: all of them together stay under half the
    # body's size. The local backend holds a 1 MiB block; the S3 one a 5 MiB part, which
    # botocore copies while it checksums, signs and sends it (peaks of 22-25 MB seen), so the
    # bound is the property itself: the 64 MiB body is never held whole.
    assert peak < 32 * MiB, peak

    hasher = hashlib.sha256()
    investigator = Tus(desk.investigator)
    url = f"/v1/attachments/{attachment_id}"
    async with investigator.actor.client._http.stream(
        "GET", url, headers=investigator.auth("GET", url)
    ) as response:
        assert response.status_code == 200
        async for block in response.aiter_bytes():
            hasher.update(block)
    assert hasher.hexdigest() == digest


async def test_a_killed_connection_resumes_without_resending_the_prefix(desk: Desk) -> None:
    blocks = 12
    data = b"".join(pattern(i) for i in range(blocks))
    tus = Tus(desk.operative)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    path = f"/v1/uploads/{attachment_id}"
    base = urlsplit(desk.world.base_url)
    assert base.hostname is not None
    assert base.port is not None

    sent = 7 * MiB + 333
    reader, writer = await asyncio.open_connection(base.hostname, base.port)
    head = {
        **tus.auth("PATCH", path),
        "Host": base.netloc,
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
        "Content-Length": str(len(data)),
    }
    writer.write(
        f"PATCH {path} HTTP/1.1\r\n".encode()
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in head.items())
        + b"\r\n"
    )
    writer.write(data[:sent])
    await writer.drain()

    async def all_sent_arrived() -> bool:
        # The bytes are recorded only once the server sees the connection end; before, the
        # offset is still 0, so poll after the kill.
        return await tus.offset(attachment_id) == sent

    await asyncio.sleep(0.5)
    writer.transport.abort()  # the phone loses its network mid-body
    await wait_for(all_sent_arrived, timeout_s=15)

    # Resume from the server's offset with only the rest; a still-finishing PATCH answers 409.
    offset = await tus.offset(attachment_id)
    for _ in range(50):
        resumed = await tus.patch(attachment_id, offset, data[offset:])
        if resumed.status_code != 409:
            break
        await asyncio.sleep(0.1)
    assert resumed.status_code == 204, resumed.text
    assert (await Tus(desk.investigator).download(attachment_id)).content == data
    del reader


class Sha256Uploader(Uploader):
    # tuspy's documented way to pick the checksum algorithm; the server speaks sha256 only.
    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


@pytest.fixture
def dpop_for_tuspy(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """tuspy has no per-request auth hook, and a DPoP proof names the method and URL of exactly
    one request: add the token and a fresh proof to every request it makes."""
    actor = desk.operative
    token = actor.token().access_token
    original = requests.api.request

    def request(method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        headers["Authorization"] = f"DPoP {token}"
        headers["DPoP"] = make_proof(actor.device, method.upper(), url, access_token=token)
        return original(method, url, headers=headers, **kwargs)

    monkeypatch.setattr(requests.api, "request", request)


@pytest.mark.usefixtures("dpop_for_tuspy")
async def test_tuspy_uploads_to_the_endpoint(desk: Desk) -> None:
    data = b"".join(pattern(i) for i in range(6)) + b"tail"
    attachment_id = "5f0d6c1e-8a8b-4b7e-9c3a-2e4f6a8b0c1d"
    client = TusClient(desk.world.base_url + "/v1/uploads")
    uploader = Sha256Uploader(
        file_stream=io.BytesIO(data),
        client=client,
        chunk_size=2 * MiB + 7,
        metadata={
            "attachment_id": attachment_id,
            "ciphertext_sha256": hashlib.sha256(data).hexdigest(),
            "ciphertext_length": str(len(data)),
        },
        upload_checksum=True,
    )
    # tuspy is synchronous; the live server shares this event loop, so it runs in a thread.
    await asyncio.to_thread(uploader.upload)
    assert uploader.offset == len(data)
    download = await Tus(desk.investigator).download(UUID(attachment_id))
    assert download.content == data


async def test_another_server_process_continues_an_upload(desk: Desk) -> None:
    # A second process on the same database and storage: what a restarted server or another
    # replica sees. It has none of the first one's memory (no running hasher), so completion
    # re-reads the stored bytes to check the digest.
    data = b"".join(pattern(i) for i in range(7)) + b"end"
    first = Tus(desk.operative)
    attachment_id, _ = await first.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await first.patch(attachment_id, 0, data[: 3 * MiB + 5])).status_code == 204
    async with (
        LiveServer(desk.evidence.settings) as other,
        TiplineClient(other.base_url, desk.operative.device) as client,
    ):
        second = Tus(desk.operative, client)
        offset = await second.offset(attachment_id)
        assert offset == 3 * MiB + 5
        done = await second.patch(attachment_id, offset, data[offset:])
        assert done.status_code == 204, done.text
    assert (await Tus(desk.investigator).download(attachment_id)).content == data
