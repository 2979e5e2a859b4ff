"""The reference client end to end: encrypt a file with age to the investigators of the signed
key directory, sign both digests, upload with tus (resuming after a client restart), and
verify it on the investigator's side: decrypt bit for bit, both digests, the device signature,
the custody history. The server never sees a byte of plaintext."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from uuid import uuid4

import asyncpg
import msgspec
import pytest

from clients.reference_client.evidence import (
    EvidenceClient,
    EvidenceError,
    SealedAttachment,
    custody_lines,
    seal_file,
)
from server.evidence.storage import LocalStorage, S3Storage
from tests.evidence.conftest import Desk

MiB = 2**20
MARKER = b"TIPLINE-PLAINTEXT-MARKER-"


def write_evidence(path: Path, size: int) -> str:
    """A file with a recognisable marker every 4 KiB among random bytes; returns its SHA-256."""
    hasher = hashlib.sha256()
    with path.open("wb") as sink:
        written = 0
        while written < size:
            block = (MARKER + os.urandom(4096 - len(MARKER))) * 256
            block = block[: size - written]
            sink.write(block)
            hasher.update(block)
            written += len(block)
    return hasher.hexdigest()


async def sealed_for_investigators(desk: Desk, source: Path, tmp_path: Path) -> SealedAttachment:
    directory = await desk.world.publish_directory(desk.investigator, [desk.investigator])
    attachment_id = uuid4()
    return await asyncio.to_thread(
        seal_file,
        source,
        tmp_path / f"{attachment_id}.age",
        [e.age_recipient for e in directory.entries if e.role == "investigator"],
        desk.operative.device,
        attachment_id,
    )


async def stored_bytes_contain(desk: Desk, sealed: SealedAttachment, needle: bytes) -> bool:
    admin = await asyncpg.connect(desk.admin_url)
    try:
        key = await admin.fetchval(
            "SELECT storage_key FROM tipline.attachments WHERE id = $1", sealed.attachment_id
        )
        rows = await admin.fetch("SELECT * FROM tipline.attachments")
    finally:
        await admin.close()
    assert not any(needle in repr(dict(r)).encode() for r in rows)
    storage = desk.evidence.storage
    found = False
    async for block in storage.open_range(key, 0, sealed.ciphertext_length - 1):
        found = found or needle in block
    if isinstance(storage, LocalStorage):
        assert storage.path(key).stat().st_size == sealed.ciphertext_length
    else:
        assert isinstance(storage, S3Storage)
    return found


@pytest.mark.parametrize("size", [3 * MiB + 11, 200 * MiB])
async def test_seal_upload_verify_bit_for_bit(desk: Desk, tmp_path: Path, size: int) -> None:
    source = tmp_path / "video.mp4"
    plain_sha256 = await asyncio.to_thread(write_evidence, source, size)
    sealed = await sealed_for_investigators(desk, source, tmp_path)
    assert sealed.plaintext_sha256 == plain_sha256

    seen: list[int] = []
    async with EvidenceClient(desk.operative.client) as operative:
        await operative.upload(
            desk.operative.token(),
            sealed,
            chunk_bytes=64 * MiB,
            progress=lambda done, total: seen.append(done),
        )
    assert seen[-1] == sealed.ciphertext_length
    assert not await stored_bytes_contain(desk, sealed, MARKER)

    out = tmp_path / "decrypted.mp4"
    async with EvidenceClient(desk.investigator.client) as investigator:
        verified = await investigator.verify(
            desk.investigator.token(), sealed, str(desk.investigator.age_identity), out
        )
    assert verified.plaintext_sha256 == plain_sha256
    assert await asyncio.to_thread(_sha256_file, out) == plain_sha256
    assert [e.event for e in verified.custody.events] == ["received", "completed", "downloaded"]
    lines = custody_lines(verified.custody)
    assert "downloaded" in lines[-1]
    assert str(desk.investigator.account_id) in lines[-1]


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(MiB):
            hasher.update(block)
    return hasher.hexdigest()


class Crash(Exception):
    pass


async def test_an_upload_resumes_after_a_client_restart(desk: Desk, tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    await asyncio.to_thread(write_evidence, source, 9 * MiB)
    sealed = await sealed_for_investigators(desk, source, tmp_path)

    def crash_after_first_chunk(done: int, total: int) -> None:
        raise Crash

    async with EvidenceClient(desk.operative.client) as first_run:
        with pytest.raises(Crash):
            await first_run.upload(
                desk.operative.token(),
                sealed,
                chunk_bytes=4 * MiB,
                progress=crash_after_first_chunk,
            )
    # The restarted client knows only the sealed record it persisted.
    restored = msgspec.json.decode(msgspec.json.encode(sealed), type=SealedAttachment)
    progress: list[int] = []
    async with EvidenceClient(desk.operative.client) as second_run:
        assert await second_run.offset(
            desk.operative.token().access_token, sealed.attachment_id
        ) == (
            4 * MiB,
            sealed.ciphertext_length,
        )
        await second_run.upload(
            desk.operative.token(),
            restored,
            chunk_bytes=4 * MiB,
            progress=lambda done, total: progress.append(done),
        )
    # The first progress report after the restart is one chunk past where the server stood.
    assert progress[0] == 8 * MiB
    assert progress[-1] == sealed.ciphertext_length
    # A finished upload is simply finished when asked again.
    async with EvidenceClient(desk.operative.client) as third_run:
        await third_run.upload(desk.operative.token(), restored)


async def test_verify_refuses_a_forged_manifest(desk: Desk, tmp_path: Path) -> None:
    source = tmp_path / "audio.m4a"
    await asyncio.to_thread(write_evidence, source, 100_000)
    sealed = await sealed_for_investigators(desk, source, tmp_path)
    async with EvidenceClient(desk.operative.client) as operative:
        await operative.upload(desk.operative.token(), sealed)
    forged = msgspec.structs.replace(sealed, plaintext_sha256="0" * 64)
    async with EvidenceClient(desk.investigator.client) as investigator:
        with pytest.raises(EvidenceError, match="signature"):
            await investigator.verify(
                desk.investigator.token(),
                forged,
                str(desk.investigator.age_identity),
                tmp_path / "out",
            )
        assert not (tmp_path / "out").exists()
