"""The storage backends receive the next block while the previous one is stored: these tests pin
what that overlap must never change (every byte written once, in order, and hashed in order;
nothing written after `append` has returned or raised), on both real backends."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from server.evidence.storage import (
    BLOCK_CHUNKS,
    IO_BLOCK,
    LocalStorage,
    Storage,
    _to_the_end,
    storage_from_settings,
)
from server.settings import Settings

MiB = 2**20


@pytest.fixture
async def storage(backend_settings: Settings) -> AsyncIterator[Storage]:
    store = storage_from_settings(backend_settings)
    try:
        yield store
    finally:
        await store.close()


async def stored(storage: Storage, key: str, state: str, length: int) -> bytes:
    await storage.finalize(key, state, length)
    return b"".join([block async for block in storage.open_range(key, 0, length - 1)])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_tiny_and_large_chunks_are_stored_and_hashed_in_order(storage: Storage) -> None:
    # More tiny chunks than one vectored write may carry, then blocks larger than IO_BLOCK,
    # across two appends: the second must continue exactly where the first stopped.
    tiny = [secrets.token_bytes(7) for _ in range(3 * BLOCK_CHUNKS + 5)]
    large = [secrets.token_bytes(IO_BLOCK + 12345) for _ in range(3)]
    later = [secrets.token_bytes(3 * MiB + 1), secrets.token_bytes(99)]

    async def body(chunks: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    key = secrets.token_hex(16)
    state = await storage.create(key)
    first_digest, second_digest = hashlib.sha256(), hashlib.sha256()
    first = await storage.append(key, state, 0, body(tiny + large), [first_digest])
    expected_first = b"".join(tiny + large)
    assert first.written == len(expected_first)
    assert first_digest.digest() == hashlib.sha256(expected_first).digest()

    second = await storage.append(key, first.state, first.written, body(later), [second_digest])
    assert second.written == sum(map(len, later))
    assert second_digest.digest() == hashlib.sha256(b"".join(later)).digest()
    whole = expected_first + b"".join(later)
    assert await stored(storage, key, second.state, len(whole)) == whole


class SlowDigest:
    """A digest whose every update takes a while, in whatever thread calls it."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.inner = hashlib.sha256()
        self.busy = threading.Event()
        self.updates_finished = 0

    def update(self, data: bytes, /) -> None:
        self.busy.set()
        time.sleep(self.delay_s)
        self.inner.update(data)
        self.updates_finished += 1


class LocalObject(msgspec.Struct):
    storage: LocalStorage
    key: str
    state: str
    open_fds: int


@pytest.fixture
async def local_object(tmp_path: Path) -> LocalObject:
    storage = LocalStorage(tmp_path)
    key = secrets.token_hex(16)
    state = await storage.create(key)
    return LocalObject(storage, key, state, open_fds())


def assert_settled_after_one_block(target: LocalObject, digest: SlowDigest) -> None:
    # The in-flight block finished before `append` returned or raised, and its file descriptor
    # is closed: nothing can land in the file (or in a reused descriptor) afterwards.
    assert digest.updates_finished == 1
    assert open_fds() == target.open_fds
    assert target.storage.path(target.key).stat().st_size == IO_BLOCK


async def test_a_failing_body_leaves_no_write_behind(local_object: LocalObject) -> None:
    target, digest = local_object, SlowDigest(0.3)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * IO_BLOCK  # its write is in flight when the body fails
        await asyncio.to_thread(digest.busy.wait)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await target.storage.append(target.key, target.state, 0, body(), [digest])
    assert_settled_after_one_block(target, digest)
    await asyncio.sleep(0.5)
    assert target.storage.path(target.key).stat().st_size == IO_BLOCK


async def test_a_cancelled_append_waits_for_its_write_before_closing(
    local_object: LocalObject,
) -> None:
    target, digest = local_object, SlowDigest(0.5)
    blocked = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"b" * IO_BLOCK
        await asyncio.to_thread(digest.busy.wait)
        blocked.set()
        await asyncio.sleep(3600)  # a client that stopped sending
        yield b"never"

    task = asyncio.create_task(target.storage.append(target.key, target.state, 0, body(), [digest]))
    await blocked.wait()
    task.cancel()
    # Cancelled again while it waits out the write (a server shutting down twice as hard).
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_settled_after_one_block(target, digest)


async def test_an_append_cancelled_while_waiting_for_its_write_lets_it_finish(
    local_object: LocalObject,
) -> None:
    target, digest = local_object, SlowDigest(0.5)

    async def body() -> AsyncIterator[bytes]:
        # The second block arrives while the first is still being hashed and written, so the
        # append is waiting for that write when it is cancelled.
        yield b"c" * IO_BLOCK
        yield b"d" * IO_BLOCK
        await asyncio.sleep(3600)
        yield b"never"

    task = asyncio.create_task(target.storage.append(target.key, target.state, 0, body(), [digest]))
    await asyncio.to_thread(digest.busy.wait)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_settled_after_one_block(target, digest)


async def test_a_cancelled_file_operation_is_waited_for_and_its_result_undone() -> None:
    # What opening (and truncating) the file and the closing fdatasync run under: the caller's
    # cancellation waits for the thread, and an opened descriptor nobody receives is closed.
    finished = threading.Event()
    abandoned: list[int] = []

    def slow_open() -> int:
        time.sleep(0.3)
        finished.set()
        return 42

    task = asyncio.create_task(_to_the_end(slow_open, abandon=abandoned.append))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()
    assert abandoned == [42]
    assert await _to_the_end(slow_open, abandon=abandoned.append) == 42
    assert abandoned == [42]
