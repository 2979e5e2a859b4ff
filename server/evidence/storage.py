"""Where attachment ciphertext lives: one small async interface, two real backends.

Both backends take bytes as an async stream and keep at most one bounded buffer per request, so
a 1 GiB upload never sits in memory. Objects are named by a server-generated key (32 hex digits,
SEC-FILE-01); nothing a client sends becomes part of a path or an object name.

The contract that makes tus resumable and the checksum extension safe: `append` returns the new
state but never invalidates the old one, so a caller that refuses the chunk (checksum mismatch,
lost lease) simply keeps the old state and offset, and the next `append` continues from there.

Receiving and storing overlap: while one block is hashed and written (in a worker thread, or
sent to S3), the event loop receives the next. At most one block is in flight, so memory stays
at a few blocks whatever the body's size.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import msgspec

from server.settings import Settings

_T = TypeVar("_T")
_KEY = re.compile(r"^[0-9a-f]{32}$")
# Local writes and reads move this much per thread hop: large enough that the hop is noise,
# small enough to be a bounded buffer.
IO_BLOCK = 1 << 20
# A block handed to one vectored write holds at most this many chunks (IOV_MAX is 1024 on
# Linux), whatever size the client's chunks come in.
BLOCK_CHUNKS: Final = 256
# Linux starts writing a range's dirty pages back when told they are not needed (and drops them
# from the cache once clean); absent on some platforms (macOS).
_FADVISE: Final = getattr(os, "posix_fadvise", None)
# attachments.storage_state CHECK (0007_evidence.sql); the settings refuse a part size that
# could need more (server/settings.py).
STATE_MAX_BYTES = 65536


class StorageError(Exception):
    """The backend failed (disk, network, S3); the request fails and the upload keeps its state."""


class Appended(msgspec.Struct, frozen=True):
    state: str
    written: int


class Digest(Protocol):
    """What `append` feeds every stored byte to (hashlib objects)."""

    def update(self, data: bytes, /) -> None: ...


class Storage(Protocol):
    async def create(self, key: str) -> str:
        """Prepares an empty object and returns the state to keep with the upload."""
        ...

    async def append(
        self,
        key: str,
        state: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        digests: Sequence[Digest] = (),
    ) -> Appended:
        """Writes `chunks` after the first `offset` bytes; the old state stays valid. Every byte
        written is fed, in order and off the event loop, to each of `digests`."""
        ...

    async def finalize(self, key: str, state: str, length: int | None = None) -> None:
        """Makes the object whole and durable once the last byte is in; idempotent, so a
        completion cut short after this step can run it again. With `length`, refuses an object
        of any other size."""
        ...

    async def discard_scratch(self, key: str) -> None:
        """Removes what only an unfinished upload needed, once completion is recorded."""
        ...

    def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes `start`..`end` (inclusive) of a finalized object, in bounded chunks."""
        ...

    async def delete(self, key: str, state: str) -> None:
        """Removes the object and anything an unfinished upload left; idempotent."""
        ...

    async def close(self) -> None: ...


def _checked(key: str) -> str:
    if not _KEY.match(key):
        raise ValueError("storage keys are 32 lowercase hex digits")
    return key


class LocalStorage:
    """A folder on local disk (the default, next to the embedded database).

    The file is truncated to the committed offset before every append, so bytes written by a
    refused or interrupted request can never become part of the evidence.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        key = _checked(key)
        # Two-level fan-out keeps directories small on file systems that slow down past ~10^5.
        return self.root / key[:2] / key

    async def create(self, key: str) -> str:
        path = self.path(key)

        def make() -> None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(fd)

        await asyncio.to_thread(make)
        return ""

    async def append(
        self,
        key: str,
        state: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        digests: Sequence[Digest] = (),
    ) -> Appended:
        fd = await _to_the_end(_open_truncated, self.path(key), offset, abandon=os.close)
        written = 0
        writes = _OneInFlight()
        try:
            async for block in _blocks(chunks, IO_BLOCK):
                await writes.start(
                    functools.partial(
                        asyncio.to_thread, _digest_and_write, fd, block, offset + written, digests
                    )
                )
                written += sum(len(chunk) for chunk in block)
            await writes.wait()
            # Durable before the offset is committed: a crash must never leave the database
            # promising bytes the disk lost.
            await _to_the_end(os.fdatasync, fd)
        finally:
            try:
                await writes.settle()
            finally:
                os.close(fd)
        return Appended(state=state, written=written)

    async def finalize(self, key: str, state: str, length: int | None = None) -> None:
        path = self.path(key)

        def sync() -> None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                raise StorageError("the upload's object is missing") from None
            try:
                # A running hash covers the bytes that were sent, not the bytes on disk: only
                # an object of exactly the declared size may be trusted with it.
                if length is not None and os.fstat(fd).st_size != length:
                    raise StorageError("the object's size is not the upload's length")
                os.fsync(fd)
            finally:
                os.close(fd)
            # The directory entry too, or a crash could lose a fully written file.
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

        await asyncio.to_thread(sync)

    async def discard_scratch(self, key: str) -> None:
        return None

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        path = self.path(key)
        fd = await asyncio.to_thread(os.open, path, os.O_RDONLY)
        try:
            position = start
            while position <= end:
                block = await asyncio.to_thread(
                    os.pread, fd, min(IO_BLOCK, end - position + 1), position
                )
                if not block:
                    raise StorageError("the object is shorter than recorded")
                position += len(block)
                yield block
        finally:
            os.close(fd)

    async def delete(self, key: str, state: str) -> None:
        path = self.path(key)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)

    async def close(self) -> None:
        return None


class _S3State(msgspec.Struct, frozen=True, array_like=True):
    upload_id: str
    # (ETag, size) of parts 1..n, every one exactly the part size.
    parts: list[tuple[str, int]]
    # Bytes after the last part, kept in a small side object until they fill a part.
    tail: int


_s3_state_decoder = msgspec.json.Decoder(_S3State)


class S3Storage:
    """Any S3-compatible store, with one multipart upload per attachment.

    tus chunks come in any size, but S3 wants parts of at least 5 MiB (all but the last), so
    each append fills fixed-size parts and leaves the remainder in a side object
    `<key>.tail.<start>` that the next append reads back first (as tusd's s3store does). A
    refused append either wrote parts past the committed list (overwritten later) or rewrote
    the tail object with a longer one that starts with the same bytes, so the old state still
    reads correctly: only its `tail` bytes are read.

    aiobotocore, not obstore: obstore (object_store) hides the multipart upload id and part
    list, so an upload could not be continued by another request or replica; measured against
    moto both moved 128 MiB at the same speed (59 MiB/s put, ~600 MiB/s get), obstore with a
    larger resident set.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        part_bytes: int,
        endpoint_url: str | None,
        region: str,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.part_bytes = part_bytes
        self._endpoint_url = endpoint_url
        self._region = region
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from aiobotocore.session import get_session  # type: ignore[import-untyped]

                    self._client = await self._stack.enter_async_context(
                        get_session().create_client(
                            "s3", endpoint_url=self._endpoint_url, region_name=self._region
                        )
                    )
        return self._client

    def object_name(self, key: str) -> str:
        return self.prefix + _checked(key)

    def _tail_name(self, key: str, start: int) -> str:
        return f"{self.object_name(key)}.tail.{start}"

    async def create(self, key: str) -> str:
        s3 = await self._s3()
        try:
            created = await s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.object_name(key)
            )
        except Exception as exc:
            raise StorageError("could not start the multipart upload") from exc
        return _encode(_S3State(upload_id=created["UploadId"], parts=[], tail=0))

    async def append(
        self,
        key: str,
        state: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        digests: Sequence[Digest] = (),
    ) -> Appended:
        s3 = await self._s3()
        current = _s3_state_decoder.decode(state)
        parts = list(current.parts)
        start = sum(size for _, size in parts)
        if start + current.tail != offset:
            raise StorageError("the stored state does not match the offset")
        buffer = bytearray()

        async def store(block: list[bytes]) -> None:
            nonlocal start
            if digests:
                await asyncio.to_thread(_digest, digests, block)
            for chunk in block:
                buffer.extend(chunk)
            while len(buffer) >= self.part_bytes:
                with memoryview(buffer) as view:
                    body = bytes(view[: self.part_bytes])
                del buffer[: self.part_bytes]
                etag = await self._upload_part(s3, key, current.upload_id, len(parts) + 1, body)
                parts.append((etag, len(body)))
                start += len(body)

        uploads = _OneInFlight()
        try:
            try:
                if current.tail:
                    # Already fed to the digests by the append that received them.
                    buffer += await self._read_tail(key, start, current.tail)
                async for block in _blocks(chunks, IO_BLOCK):
                    await uploads.start(functools.partial(store, block))
                await uploads.wait()
            finally:
                await uploads.settle()
            if buffer:
                await s3.put_object(
                    Bucket=self.bucket, Key=self._tail_name(key, start), Body=bytes(buffer)
                )
        except StorageError:
            raise
        except Exception as exc:
            if _is_s3_error(exc):
                raise StorageError("the object store refused the write") from exc
            raise
        new_state = _encode(_S3State(upload_id=current.upload_id, parts=parts, tail=len(buffer)))
        if len(new_state.encode()) > STATE_MAX_BYTES:
            # The settings check makes this unreachable; the database would refuse it anyway.
            raise StorageError("too many parts for the upload's recorded state")
        return Appended(state=new_state, written=start + len(buffer) - offset)

    async def finalize(self, key: str, state: str, length: int | None = None) -> None:
        s3 = await self._s3()
        current = _s3_state_decoder.decode(state)
        parts = list(current.parts)
        start = sum(size for _, size in parts)
        name = self.object_name(key)
        try:
            # The key is ours and nothing but completion creates the object: if it exists with
            # the right size, an earlier attempt completed it but did not live to record that.
            if length is not None and await self._object_size(s3, name) == length:
                return
            try:
                if current.tail:
                    body = await self._read_tail(key, start, current.tail)
                    etag = await self._upload_part(s3, key, current.upload_id, len(parts) + 1, body)
                    parts.append((etag, len(body)))
                await s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=current.upload_id,
                    MultipartUpload={
                        "Parts": [
                            {"PartNumber": number, "ETag": etag}
                            for number, (etag, _) in enumerate(parts, start=1)
                        ]
                    },
                )
            except Exception as exc:
                # Completed concurrently: the size below says whether it is the right object.
                if not _is_s3_code(exc, "NoSuchUpload"):
                    raise
            if length is not None and await self._object_size(s3, name) != length:
                raise StorageError("the object's size is not the upload's length")
        except StorageError:
            raise
        except Exception as exc:
            if _is_s3_error(exc):
                raise StorageError("the object store refused to complete the upload") from exc
            raise

    async def _object_size(self, s3: Any, name: str) -> int | None:
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _is_s3_code(exc, "404") or _is_s3_code(exc, "NoSuchKey"):
                return None
            raise
        size: int = head["ContentLength"]
        return size

    async def discard_scratch(self, key: str) -> None:
        try:
            await self._delete_tails(key)
        except Exception as exc:
            if _is_s3_error(exc):
                raise StorageError("the object store refused to delete scratch objects") from exc
            raise

    async def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        s3 = await self._s3()
        try:
            response = await s3.get_object(
                Bucket=self.bucket, Key=self.object_name(key), Range=f"bytes={start}-{end}"
            )
        except Exception as exc:
            if _is_s3_error(exc):
                raise StorageError("the object store refused the read") from exc
            raise
        async with response["Body"] as body:
            async for block in body.iter_chunks(IO_BLOCK):
                yield block

    async def delete(self, key: str, state: str) -> None:
        s3 = await self._s3()
        if state:
            current = _s3_state_decoder.decode(state)
            with contextlib.suppress(Exception):
                # Already completed or aborted: nothing left to abort.
                await s3.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.object_name(key), UploadId=current.upload_id
                )
        await s3.delete_object(Bucket=self.bucket, Key=self.object_name(key))
        await self._delete_tails(key)

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def _read_tail(self, key: str, start: int, size: int) -> bytes:
        s3 = await self._s3()
        response = await s3.get_object(
            Bucket=self.bucket, Key=self._tail_name(key, start), Range=f"bytes=0-{size - 1}"
        )
        async with response["Body"] as body:
            data: bytes = await body.read()
        if len(data) != size:
            raise StorageError("the tail object is shorter than recorded")
        return data

    async def _upload_part(
        self, s3: Any, key: str, upload_id: str, number: int, body: bytes
    ) -> str:
        response = await s3.upload_part(
            Bucket=self.bucket,
            Key=self.object_name(key),
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        etag: str = response["ETag"]
        return etag

    async def _delete_tails(self, key: str) -> None:
        s3 = await self._s3()
        listed = await s3.list_objects_v2(
            Bucket=self.bucket, Prefix=f"{self.object_name(key)}.tail."
        )
        for item in listed.get("Contents", []):
            await s3.delete_object(Bucket=self.bucket, Key=item["Key"])


class _OneInFlight:
    """Runs one job at a time beside the caller: `start` waits for the previous job (raising
    its error) and starts the next, so the caller receives block n+1 while block n is stored."""

    def __init__(self) -> None:
        self._job: asyncio.Task[Any] | None = None

    async def start(self, job: Callable[[], Awaitable[Any]]) -> None:
        await self.wait()
        self._job = asyncio.ensure_future(job())

    async def wait(self) -> None:
        job = self._job
        if job is not None:
            # Shielded: awaiting the task itself would cancel it with a cancelled caller, and a
            # cancelled to_thread task ends at once while its thread goes on writing.
            await asyncio.shield(job)
            self._job = None

    async def settle(self) -> None:
        """Lets a job that is still running finish, even when the caller is cancelled meanwhile:
        a write must never outlive the file descriptor it writes to, nor land after a later
        append truncated the file. Its error, if any, is the caller's to have seen already."""
        job, self._job = self._job, None
        if job is None:
            return
        cancelled = await _outlast(job)
        if not job.cancelled():
            job.exception()  # retrieved: the failure that brought us here is being raised
        if cancelled:
            raise asyncio.CancelledError


async def _outlast(job: asyncio.Future[Any]) -> bool:
    """Waits for `job` to end whatever happens to the caller meanwhile; True if the caller was
    cancelled during the wait (it re-raises once it has cleaned up)."""
    cancelled = False
    while not job.done():
        try:
            await asyncio.wait({job})
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


async def _to_the_end(
    function: Callable[..., _T], *args: Any, abandon: Callable[[_T], object] | None = None
) -> _T:
    """`function(*args)` in a worker thread. A caller cancelled meanwhile still waits for the
    thread to finish before the cancellation goes on, so no file operation outlives the request
    that started it; `abandon` undoes a result nobody will receive (closes an opened file)."""
    job = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        await _outlast(job)
        if abandon is not None and not job.cancelled() and job.exception() is None:
            abandon(job.result())
        raise


async def _blocks(chunks: AsyncIterator[bytes], size: int) -> AsyncIterator[list[bytes]]:
    """The body's chunks, gathered (not copied) into blocks of at least `size` bytes or
    `BLOCK_CHUNKS` chunks, the last block possibly smaller."""
    pending: list[bytes] = []
    held = 0
    async for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size or len(pending) >= BLOCK_CHUNKS:
            yield pending
            pending = []
            held = 0
    if pending:
        yield pending


def _digest(digests: Sequence[Digest], block: Sequence[bytes]) -> None:
    # hashlib releases the GIL on large buffers: in a thread, this overlaps with receiving.
    for digest in digests:
        for chunk in block:
            digest.update(chunk)


def _open_truncated(path: Path, offset: int) -> int:
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        raise StorageError("the upload's object is missing") from None
    try:
        os.ftruncate(fd, offset)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _digest_and_write(
    fd: int, block: Sequence[bytes], position: int, digests: Sequence[Digest]
) -> None:
    _digest(digests, block)
    written = _write_all(fd, block, position)
    if _FADVISE is not None:
        # Starts this block's disk write now, so the fdatasync that ends the request has
        # little left to wait for, and keeps evidence out of the page cache.
        _FADVISE(fd, position, written, os.POSIX_FADV_DONTNEED)


def _write_all(fd: int, block: Sequence[bytes], position: int) -> int:
    # pwritev may write fewer bytes than asked (signals, quotas, some file systems).
    views = [memoryview(chunk) for chunk in block if chunk]
    written = 0
    while views:
        count = os.pwritev(fd, views, position + written)
        if count <= 0:
            raise StorageError("the disk accepted no bytes")
        written += count
        while views and count >= len(views[0]):
            count -= len(views.pop(0))
        if count:
            views[0] = views[0][count:]
    return written


def _encode(state: _S3State) -> str:
    return msgspec.json.encode(state).decode()


def _is_s3_error(exc: Exception) -> bool:
    # botocore's ClientError and connection errors; imported lazily with the client.
    from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

    return isinstance(exc, (ClientError, BotoCoreError, OSError))


def _is_s3_code(exc: Exception, code: str) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == code


def storage_from_settings(settings: Settings) -> Storage:
    if settings.evidence_storage == "s3":
        if not settings.evidence_s3_bucket:
            raise ValueError("TIPLINE_EVIDENCE_S3_BUCKET is required with the s3 backend")
        return S3Storage(
            bucket=settings.evidence_s3_bucket,
            prefix=settings.evidence_s3_prefix,
            part_bytes=settings.evidence_s3_part_bytes,
            endpoint_url=settings.evidence_s3_endpoint_url,
            region=settings.evidence_s3_region,
        )
    return LocalStorage(settings.evidence_path)
