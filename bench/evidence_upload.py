"""Evidence upload throughput against the disk, and the server's memory while it streams.

Run from the repository root: `.venv/bin/python bench/evidence_upload.py` (1 GiB per backend and
3 rounds by default; `--size-mib`, `--chunk-mib`, `--part-mib`, `--backends`, `--rounds`,
`--s3-endpoint`; --help).

One embedded PostgreSQL in a temporary folder, migrated, a secret key, and `tipline serve`
itself (granian, one worker, `python -m server.cli serve`) on a loopback port, once per backend:

- local: `TIPLINE_EVIDENCE_STORAGE=local`, the folder in the same temporary directory (so on the
  same disk as the baselines below);
- s3: `TIPLINE_EVIDENCE_STORAGE=s3` against moto's standalone server (`moto[server]`) on
  loopback, a Python test double of S3's protocol, not of its speed: its throughput bounds this
  row's. `--s3-endpoint` points at another S3-compatible store instead.

The first investigator (who may upload their own material) logs in through the reference client
and uploads an age file (random plaintext of `--size-mib`, encrypted up front, untimed: the
server completes only age ciphertext) with `EvidenceClient.upload` (tus PATCHes of
`--chunk-mib`, DPoP proof per request, no per-chunk checksum; the server hashes everything and
checks the whole-file SHA-256 on completion). Each round, one step after the other:

- disk copy (the target's baseline): the same file, from the page cache, to a new file on the
  same disk in 1 MiB blocks with one fsync at the end, as `cp` and `sync` would;
- server-style copy: the same, written the way the local backend writes (early writeback of
  each block, then one fdatasync): the disk driven as hard as the server drives it;
- store direct (s3 only): the same bytes straight to the same bucket with aiobotocore and the
  same part size: what the store itself takes;
- the upload.

Ratio = baseline time / upload time, per round (1.0 = as fast as the baseline; the issue's
target is >= 0.5 against the disk copy); the table shows the median of the rounds (min..max).

Server memory: the resident set of the server's whole process tree (granian's supervisor and
worker) is sampled every 20 ms; growth = peak during the upload - the value just before it
(target < 64 MiB), after a 1 MiB warm-up upload (the S3 client and its service model load on
first use). CPU seconds during the upload: the server's process tree, this process (the client
and the sampler) and the whole machine. Everything started here is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import psutil
import pyrage

from bench import _harness
from bench._harness import (
    HOST,
    INVESTIGATOR,
    Lab,
    first_invite_code,
    free_port,
    machine_cpu_seconds,
    machine_description,
    own_cpu_seconds,
    prepare_database,
    process_tree,
    server_environment,
    span,
    start_server,
    stop_server,
    tree_cpu_seconds,
    wait_ready,
)
from clients.reference_client.api import Session, TiplineClient
from clients.reference_client.device import DeviceKeyPair
from clients.reference_client.evidence import EvidenceClient, SealedAttachment
from server.embedded import APP_ROLE, EmbeddedPostgres
from server.keyring import generate_key_file

DB_NAME = "tipline_bench_evidence"
MiB = 2**20
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
SAMPLE_S = 0.02


def _tree_rss(pid: int) -> int:
    # process_tree reads /proc/<pid>/task/*/children: cheap enough to run every sample, unlike
    # psutil's children(), which scans every process on the machine on the cores being measured.
    total = 0
    for member in process_tree(pid):
        try:
            total += psutil.Process(member).memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            time.sleep(SAMPLE_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_ciphertext_file(path: Path, plaintext_size: int) -> str:
    """An age file of `plaintext_size` random bytes, to a throwaway recipient (the server
    completes only uploads that are age ciphertext); returns its SHA-256."""
    plaintext = path.with_suffix(".plain")
    with plaintext.open("wb") as sink:
        left = plaintext_size
        while left:
            block = os.urandom(min(MiB, left))
            sink.write(block)
            left -= len(block)
    recipient = pyrage.x25519.Identity.generate().to_public()
    with plaintext.open("rb") as reader, path.open("wb") as writer:
        pyrage.encrypt_io(reader, writer, [recipient])
    plaintext.unlink()
    hasher = hashlib.sha256()
    with path.open("rb") as reader:
        while block := reader.read(MiB):
            hasher.update(block)
    return hasher.hexdigest()


def disk_copy_seconds(source: Path, target: Path) -> float:
    started = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        while block := reader.read(MiB):
            writer.write(block)
        writer.flush()
        os.fsync(writer.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


def server_style_copy_seconds(source: Path, target: Path) -> float:
    """The same copy, written the way the local backend writes (early writeback per block):
    the disk driven as hard as the server drives it, with no HTTP, hashing or database."""
    started = time.perf_counter()
    with source.open("rb") as reader:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            position = 0
            while block := reader.read(MiB):
                position += os.pwrite(fd, block, position)
                os.posix_fadvise(fd, position - len(block), len(block), os.POSIX_FADV_DONTNEED)
            os.fdatasync(fd)
        finally:
            os.close(fd)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


async def enrol_and_login(url: str, device: DeviceKeyPair, code: str) -> Session:
    async with TiplineClient(url, device) as client:
        recipient = str(pyrage.x25519.Identity.generate().to_public())
        return await _harness.enrol_and_login(client, code, INVESTIGATOR, recipient)


async def upload_once(
    url: str,
    device: DeviceKeyPair,
    session: Session,
    source: Path,
    size: int,
    digest: str,
    chunk: int,
) -> float:
    sealed = SealedAttachment(
        attachment_id=uuid.uuid4(),
        ciphertext_path=str(source),
        ciphertext_length=size,
        plaintext_sha256="0" * 64,  # not used by the upload; the server never sees plaintext
        ciphertext_sha256=digest,
        signature="",
        device_key={},
    )
    async with TiplineClient(url, device) as client, EvidenceClient(client) as evidence:
        started = time.perf_counter()
        await evidence.upload(session, sealed, chunk_bytes=chunk)
        return time.perf_counter() - started


async def store_direct_seconds(endpoint: str, bucket: str, source: Path, part: int) -> float:
    """The same bytes sent straight to the same object store, with the server's library and
    part size and no Tipline in between: what the store itself can take."""
    from aiobotocore.session import get_session  # type: ignore[import-untyped]

    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1"
    ) as s3:
        key = f"baseline-{secrets.token_hex(4)}"
        started = time.perf_counter()
        created = await s3.create_multipart_upload(Bucket=bucket, Key=key)
        parts: list[dict[str, object]] = []
        with source.open("rb") as reader:
            while body := await asyncio.to_thread(reader.read, part):
                answer = await s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=created["UploadId"],
                    PartNumber=len(parts) + 1,
                    Body=body,
                )
                parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"]})
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=created["UploadId"], MultipartUpload={"Parts": parts}
        )
        elapsed = time.perf_counter() - started
        await s3.delete_object(Bucket=bucket, Key=key)
        return elapsed


async def make_bucket(endpoint: str) -> str:
    from aiobotocore.session import get_session

    bucket = f"bench-{secrets.token_hex(4)}"
    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name="us-east-1"
    ) as s3:
        await s3.create_bucket(Bucket=bucket)
    return bucket


def run_backend(
    backend: str,
    args: argparse.Namespace,
    workdir: Path,
    app_url: str,
    source: Path,
    digest: str,
    s3_endpoint: str | None,
) -> dict[str, object]:
    data_dir = workdir / backend
    data_dir.mkdir()
    generate_key_file(data_dir / "secret.key")
    env = server_environment(
        app_url,
        data_dir,
        TIPLINE_HTTP_WORKERS="1",
        TIPLINE_EVIDENCE_STORAGE=backend,
        TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES=str(max(source.stat().st_size, MiB)),
        TIPLINE_EVIDENCE_MAX_PATCH_BYTES=str(args.chunk_mib * MiB),
    )
    bucket = None
    if backend == "s3":
        assert s3_endpoint is not None
        env.update(S3_CREDENTIALS)
        os.environ.update(S3_CREDENTIALS)
        bucket = asyncio.run(make_bucket(s3_endpoint))
        env.update(
            TIPLINE_EVIDENCE_S3_ENDPOINT_URL=s3_endpoint,
            TIPLINE_EVIDENCE_S3_BUCKET=bucket,
            TIPLINE_EVIDENCE_S3_PART_BYTES=str(args.part_mib * MiB),
        )
    code = first_invite_code(env)
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "serve", "--port", str(port)]
    server = start_server(
        f"server-{backend}", port, command, env, workdir / f"server-{backend}.log"
    )
    url = server.url
    try:
        wait_ready(server, ["/healthz"], any_answer=True)
        device = DeviceKeyPair.generate()
        session = asyncio.run(enrol_and_login(url, device, code))
        # Warm-up: the first upload loads what a server loads once (the S3 client and its
        # service model, tens of MiB); that is start-up cost, not per-upload growth.
        warm = data_dir / "warm-up.bin"
        warm_digest = write_ciphertext_file(warm, MiB)
        warm_size = warm.stat().st_size
        asyncio.run(upload_once(url, device, session, warm, warm_size, warm_digest, MiB))
        uploads, disks, ratios, growth, stores, store_ratios = [], [], [], [], [], []
        styled, styled_ratios = [], []
        server_cpu, client_cpu, machine_cpu = [], [], []
        size = source.stat().st_size
        for _ in range(args.rounds):
            # Interleaved A B A B: the disk's speed drifts on a shared host, and each round's
            # ratio compares an upload with a copy made moments before it.
            disk_s = disk_copy_seconds(source, data_dir / "baseline.bin")
            styled.append(server_style_copy_seconds(source, data_dir / "baseline.bin"))
            if bucket is not None:
                assert s3_endpoint is not None
                stores.append(
                    asyncio.run(
                        store_direct_seconds(s3_endpoint, bucket, source, args.part_mib * MiB)
                    )
                )
            before = _tree_rss(server.process.pid)
            cpu_before = (
                tree_cpu_seconds(server.process.pid),
                own_cpu_seconds(),
                machine_cpu_seconds(),
            )
            with RssSampler(server.process.pid) as sampler:
                upload_s = asyncio.run(
                    upload_once(url, device, session, source, size, digest, args.chunk_mib * MiB)
                )
            server_cpu.append(tree_cpu_seconds(server.process.pid) - cpu_before[0])
            client_cpu.append(own_cpu_seconds() - cpu_before[1])
            machine_cpu.append(machine_cpu_seconds() - cpu_before[2])
            disks.append(disk_s)
            uploads.append(upload_s)
            ratios.append(disk_s / upload_s)
            styled_ratios.append(styled[-1] / upload_s)
            if stores:
                store_ratios.append(stores[-1] / upload_s)
            growth.append(max(0, sampler.peak - before))
    finally:
        stop_server(server)
    return {
        "backend": backend,
        "size_mib": size // MiB,
        "upload_mib_s": span([size / MiB / s for s in uploads], ".0f"),
        "disk_mib_s": span([size / MiB / s for s in disks], ".0f"),
        "ratio": span(ratios, ".2f"),
        "styled_mib_s": span([size / MiB / s for s in styled], ".0f"),
        "styled_ratio": span(styled_ratios, ".2f"),
        "store_mib_s": span([size / MiB / s for s in stores], ".0f") if stores else "-",
        "store_ratio": span(store_ratios, ".2f") if stores else "-",
        "rss_growth_mib": max(growth) / MiB,
        "cpu": (
            f"{statistics.median(server_cpu):.2f} / {statistics.median(client_cpu):.2f} "
            f"/ {statistics.median(machine_cpu):.2f} of {2 * statistics.median(uploads):.2f}"
        ),
    }


async def reset_database(embedded: EmbeddedPostgres) -> None:
    admin = await asyncpg.connect(embedded.url("postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    finally:
        await admin.close()
    await prepare_database(embedded, DB_NAME)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--chunk-mib", type=int, default=64, help="tus PATCH size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="local,s3")
    parser.add_argument("--part-mib", type=int, default=8, help="S3 part size (both sides)")
    parser.add_argument("--s3-endpoint", help="an S3 endpoint to use instead of moto")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    lab = Lab(Path(tempfile.mkdtemp(prefix="tipline-evidence-bench-")))
    workdir = lab.workdir
    results = []
    try:
        embedded = lab.start_postgres()
        source = workdir / "ciphertext.bin"
        digest = write_ciphertext_file(source, args.size_mib * MiB)
        s3_endpoint = args.s3_endpoint
        if "s3" in backends and s3_endpoint is None:
            moto_port = free_port()
            moto = start_server(
                "moto",
                moto_port,
                [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(moto_port)],
                {**os.environ, **S3_CREDENTIALS},
                workdir / "moto.log",
            )
            lab.servers.append(moto)
            s3_endpoint = moto.url
            wait_ready(moto, [""], any_answer=True)
        for backend in backends:
            asyncio.run(reset_database(embedded))
            results.append(
                run_backend(
                    backend,
                    args,
                    workdir,
                    embedded.url(DB_NAME, user=APP_ROLE),
                    source,
                    digest,
                    s3_endpoint,
                )
            )
    finally:
        lab.close(stop_timeout_s=20.0)
    print(f"{machine_description()}; {args.rounds} rounds, median (min..max)")
    print(
        "| backend | size MiB | upload MiB/s | disk copy MiB/s | ratio (>= 0.5) "
        "| server-style copy MiB/s | ratio to it | store direct MiB/s | ratio to store "
        "| server RSS growth MiB (< 64) | CPU s: server / client / machine of available |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(
            f"| {r['backend']} | {r['size_mib']} | {r['upload_mib_s']} | {r['disk_mib_s']} "
            f"| {r['ratio']} | {r['styled_mib_s']} | {r['styled_ratio']} "
            f"| {r['store_mib_s']} | {r['store_ratio']} "
            f"| {r['rss_growth_mib']:.1f} | {r['cpu']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
