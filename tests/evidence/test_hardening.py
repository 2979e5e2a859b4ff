"""The evidence capability under failure and abuse, against real PostgreSQL, real HTTP and both
backends: a completion cut short at any step is finished by a retry; plaintext is refused;
per-account quotas and the per-process PATCH cap; bounded Range parsing; short disk writes;
duplicate citations; audited refusals; duress HEAD; sha1 checksums and Tus-Resumable on every
upload response; the S3 part-count check at load."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import msgspec
import pytest

from clients.reference_client.envelope import AttachmentDigest
from clients.reference_client.reports import TipReport, seal_report
from server.db import transaction
from server.envelope.age_header import check_age_ciphertext
from server.envelope.signatures import AttachmentDigest as ServerDigest
from server.errors import InvalidInput
from server.evidence.service import check_age_prefix, check_citations
from server.evidence.storage import Digest, LocalStorage, S3Storage, Storage, StorageError
from server.settings import SettingsError, load_settings
from tests.evidence.conftest import (
    Desk,
    Tus,
    age_blob,
    age_header,
    checksum,
    stored_object_exists,
    wait_for,
)

PROBLEM = "application/problem+json"
MiB = 2**20


class Flaky:
    """The real backend, with one step that fails once, after doing its work (as a crash or a
    lost connection right after an irreversible storage step would)."""

    def __init__(self, inner: Storage, step: str) -> None:
        self.inner = inner
        self.step = step
        self.tripped = False

    def _trip(self, step: str) -> None:
        if step == self.step and not self.tripped:
            self.tripped = True
            raise StorageError(f"injected failure at {step}")

    async def create(self, key: str) -> str:
        return await self.inner.create(key)

    async def append(
        self,
        key: str,
        state: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        digests: Sequence[Digest] = (),
    ) -> Any:
        return await self.inner.append(key, state, offset, chunks, digests)

    async def finalize(self, key: str, state: str, length: int | None = None) -> None:
        await self.inner.finalize(key, state, length)
        self._trip("finalize")

    def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self._trip("read")
        return self.inner.open_range(key, start, end)

    async def discard_scratch(self, key: str) -> None:
        self._trip("scratch")
        await self.inner.discard_scratch(key)

    async def delete(self, key: str, state: str) -> None:
        await self.inner.delete(key, state)

    async def close(self) -> None:
        await self.inner.close()


class SlowRead(Flaky):
    """Re-reading the whole object takes longer than the lease."""

    def __init__(self, inner: Storage, length: int, delay_s: float) -> None:
        super().__init__(inner, "none")
        self.length = length
        self.delay_s = delay_s
        self.started = asyncio.Event()

    async def _slow(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        self.started.set()
        async for block in self.inner.open_range(key, start, end):
            for index in range(0, len(block), 64 * 1024):
                await asyncio.sleep(self.delay_s)
                yield block[index : index + 64 * 1024]

    def open_range(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        if end - start + 1 == self.length:
            return self._slow(key, start, end)
        return self.inner.open_range(key, start, end)


async def admin_fetchrow(desk: Desk, sql: str, *args: Any) -> Any:
    admin = await asyncpg.connect(desk.admin_url)
    try:
        return await admin.fetchrow(sql, *args)
    finally:
        await admin.close()


async def tails_left(desk: Desk, attachment_id: UUID, storage: S3Storage) -> int:
    row = await admin_fetchrow(
        desk, "SELECT storage_key FROM tipline.attachments WHERE id = $1", attachment_id
    )
    s3 = await storage._s3()
    listed = await s3.list_objects_v2(
        Bucket=storage.bucket, Prefix=f"{storage.object_name(row['storage_key'])}.tail."
    )
    return len(listed.get("Contents", []))


def with_settings(desk: Desk, **changes: Any) -> None:
    context = desk.evidence
    context.settings = msgspec.structs.replace(context.settings, **changes)


@pytest.mark.parametrize("step", ["finalize", "read", "scratch"])
async def test_a_completion_cut_short_is_finished_by_a_retry(desk: Desk, step: str) -> None:
    context = desk.evidence
    real = context.storage
    tus = Tus(desk.operative)
    data = age_blob(6 * MiB + 17)  # one S3 part and a tail object
    digest = hashlib.sha256(data).hexdigest()
    attachment_id, _ = await tus.create(len(data), digest)
    half = 3 * MiB
    assert (await tus.patch(attachment_id, 0, data[:half])).status_code == 204
    context.storage = Flaky(real, step)
    try:
        last = await tus.patch(attachment_id, half, data[half:])
        flaky = context.storage
        assert isinstance(flaky, Flaky)
        assert flaky.tripped
        if step == "scratch":
            # Completion was recorded before scratch objects go; their loss is only logged.
            assert last.status_code == 204, last.text
        else:
            assert last.status_code == 500
            row = await admin_fetchrow(
                desk,
                "SELECT status, upload_offset, lease_id FROM tipline.attachments WHERE id = $1",
                attachment_id,
            )
            assert (row["status"], row["upload_offset"], row["lease_id"]) == (
                "finalizing",
                len(data),
                None,
            )
            if step == "finalize":
                retried = await tus.head(attachment_id)
                assert retried.status_code == 200, retried.status_code
                assert retried.headers["Upload-Offset"] == str(len(data))
                assert "Upload-Expires" not in retried.headers
            else:
                # The client's own retry of the last chunk: the upload is finished, and the
                # client is told where it stands.
                retried = await tus.patch(attachment_id, half, data[half:])
                assert retried.status_code == 409
                assert retried.headers["Upload-Offset"] == str(len(data))
    finally:
        context.storage = real
    row = await admin_fetchrow(
        desk,
        "SELECT status, ciphertext_sha256 FROM tipline.attachments WHERE id = $1",
        attachment_id,
    )
    assert (row["status"], row["ciphertext_sha256"]) == ("complete", digest)
    assert (await Tus(desk.investigator).download(attachment_id)).content == data
    events = (await Tus(desk.investigator).custody(attachment_id)).json()["events"]
    assert [e["event"] for e in events][:2] == ["received", "completed"]
    if isinstance(real, S3Storage) and step != "scratch":
        assert await tails_left(desk, attachment_id, real) == 0


async def test_the_lease_is_renewed_while_the_object_is_rehashed(desk: Desk) -> None:
    with_settings(desk, evidence_lease_s=5)
    context = desk.evidence
    real = context.storage
    tus = Tus(desk.operative)
    data = age_blob(2 * MiB + 1000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data[:1000])).status_code == 204
    # No running hash (another replica took the first chunk): completion re-reads the object.
    context.digests.take(attachment_id, -1)
    slow = SlowRead(real, len(data), delay_s=0.2)  # ~33 blocks: about 6.6 s, past the lease
    context.storage = slow
    try:
        last = asyncio.create_task(tus.patch(attachment_id, 1000, data[1000:]))
        await asyncio.wait_for(slow.started.wait(), 30)
        await asyncio.sleep(5.6)
        # Past the original lease: a retry must still find the upload held, not finish it twice.
        meanwhile = await tus.head(attachment_id)
        assert meanwhile.status_code == 409
        done = await last
    finally:
        context.storage = real
    assert done.status_code == 204, done.text
    assert (await Tus(desk.investigator).download(attachment_id)).content == data


async def test_plaintext_and_impossible_lengths_are_refused_at_completion(desk: Desk) -> None:
    tus = Tus(desk.operative)
    plaintext = b"Meet at the north pier, 22:00. Bring the ledger.\n" * 400
    header_only = age_header() + bytes(20)  # a real header, but no age payload is 20 bytes
    for data in (plaintext, header_only):
        attachment_id, created = await tus.create(len(data), hashlib.sha256(data).hexdigest())
        assert created.status_code == 201
        refused = await tus.patch(attachment_id, 0, data)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.json()["type"].endswith(":malformed-envelope")
        assert refused.headers["Tus-Resumable"] == "1.0.0"
        assert (await tus.head(attachment_id)).status_code == 404
        assert (await Tus(desk.investigator).download(attachment_id)).status_code == 404
        custody = (await Tus(desk.investigator).custody(attachment_id)).json()
        assert [e["event"] for e in custody["events"]] == ["received", "deleted"]
        assert custody["status"] == "deleted"
        row = await admin_fetchrow(
            desk,
            "SELECT detail FROM tipline.audit_events WHERE action = 'attachment.deleted'"
            " AND subject_id = $1",
            str(attachment_id),
        )
        assert "not_age_ciphertext" in str(row["detail"])
        assert not await stored_object_exists(desk, attachment_id)


def test_the_prefix_check_agrees_with_the_whole_file_check() -> None:
    header = age_header(b"x")
    unit = 64 * 1024 + 16
    payloads = {16 + k * unit + d for k in range(4) for d in (-17, -16, -1, 0, 1, 15, 16, 17, 5000)}
    for payload in sorted(p for p in payloads if p >= 0):
        whole = header + bytes(payload)
        try:
            check_age_ciphertext(whole, max_recipients=4, max_bytes=len(whole))
        except InvalidInput:
            expected = False
        else:
            expected = True
        try:
            check_age_prefix(whole[:8192], len(whole), max_recipients=4)
        except InvalidInput:
            accepted = False
        else:
            accepted = True
        assert accepted == expected, payload
    with pytest.raises(InvalidInput):
        check_age_prefix(b"%PDF-1.7\n" + bytes(5000), 9000, max_recipients=4)


@pytest.mark.parametrize("coerced", [False, True], ids=["real", "duress"])
async def test_open_uploads_and_declared_bytes_are_limited_per_account(
    desk: Desk, coerced: bool
) -> None:
    # A duress session meets the same limits with the same answers, though it stores nothing.
    with_settings(desk, evidence_max_open_uploads=2, evidence_max_bytes_per_day=300_000)
    if coerced:
        await duress_session(desk)
    tus = Tus(desk.operative)
    data = age_blob(50_000)
    digest = hashlib.sha256(data).hexdigest()
    first, _ = await tus.create(len(data), digest)
    second, _ = await tus.create(len(data), digest)
    third, refused = await tus.create(len(data), digest)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    # Until the earliest open upload expires (it may finish sooner).
    assert 86_000 < int(refused.headers["Retry-After"]) <= 86_400
    # A retried creation of an existing upload is not a new one.
    _, again = await tus.create(len(data), digest, attachment_id=first)
    assert again.status_code == 201
    # Another account has its own allowance.
    _, other = await Tus(desk.other_operative).create(len(data), digest)
    assert other.status_code == 201
    # Finishing one frees a slot.
    assert (await tus.patch(first, 0, data)).status_code == 204
    _, fits = await tus.create(len(data), digest, attachment_id=third)
    assert fits.status_code == 201
    assert (await tus.request("DELETE", f"/v1/uploads/{third}")).status_code == 204
    # 150,000 declared so far (terminated uploads count); 150,001 more does not fit today.
    _, too_much = await tus.create(150_001, digest)
    assert too_much.status_code == 429
    assert 86_000 < int(too_much.headers["Retry-After"]) <= 86_400
    _, exactly = await tus.create(100_000, digest)
    assert exactly.status_code == 201
    # Larger than a whole day's allowance: waiting would not help.
    _, never = await tus.create(300_001, digest)
    assert never.status_code == 413
    admin = await asyncpg.connect(desk.admin_url)
    try:
        stored = await admin.fetchval(
            "SELECT count(*) FROM tipline.attachments WHERE owner_id = $1",
            desk.operative.account_id,
        )
    finally:
        await admin.close()
    assert stored == (0 if coerced else 4)
    assert (await tus.head(second)).status_code == 200


async def test_concurrent_creations_cannot_both_take_the_last_slot(desk: Desk) -> None:
    with_settings(desk, evidence_max_open_uploads=1)
    tus = Tus(desk.operative)
    data = age_blob(1000)
    digest = hashlib.sha256(data).hexdigest()
    answers = await asyncio.gather(*(tus.create(len(data), digest) for _ in range(6)))
    statuses = sorted(response.status_code for _, response in answers)
    assert statuses == [201, 429, 429, 429, 429, 429]
    admin = await asyncpg.connect(desk.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM tipline.attachments") == 1
    finally:
        await admin.close()
    # The refused creations left no storage object behind.
    storage = desk.evidence.storage
    if isinstance(storage, LocalStorage):
        assert len([p for p in storage.root.rglob("*") if p.is_file()]) == 1


async def test_concurrent_patch_bodies_are_capped_per_process(desk: Desk) -> None:
    with_settings(desk, evidence_max_concurrent_patches=1)
    tus = Tus(desk.operative)
    data = age_blob(100_000)
    digest = hashlib.sha256(data).hexdigest()
    slow_id, _ = await tus.create(len(data), digest)
    other_id, _ = await tus.create(len(data), digest)
    go_on = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield data[:10_000]
        await go_on.wait()
        yield data[10_000:]

    slow = asyncio.create_task(
        tus.patch(slow_id, 0, trickle(), headers={"Content-Length": str(len(data))})
    )

    async def busy() -> bool:
        return desk.evidence.patching == 1

    await wait_for(busy)
    refused = await tus.patch(other_id, 0, data)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    go_on.set()
    assert (await slow).status_code == 204
    assert desk.evidence.patching == 0
    assert (await tus.patch(other_id, 0, data)).status_code == 204


async def test_range_digits_are_bounded_and_the_unit_is_case_insensitive(desk: Desk) -> None:
    data = age_blob(5000)
    tus = Tus(desk.operative)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data)).status_code == 204
    investigator = Tus(desk.investigator)
    huge = await investigator.download(attachment_id, "bytes=" + "9" * 5000 + "-")
    assert huge.status_code == 200  # not understood, so ignored (RFC 9110 §14.2)
    assert huge.content == data
    upper = await investigator.download(attachment_id, "BYTES=10-19")
    assert upper.status_code == 206
    assert upper.content == data[10:20]


async def test_short_disk_writes_are_completed(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(desk.evidence.storage, LocalStorage):
        pytest.skip("local disk writes only")
    real_pwrite = os.pwrite
    calls = 0

    def short_pwritev(fd: int, buffers: Any, offset: int) -> int:
        # At most 4095 bytes a call, so writes stop inside a buffer and across buffers.
        nonlocal calls
        calls += 1
        return real_pwrite(fd, b"".join(bytes(b) for b in buffers)[:4095], offset)

    monkeypatch.setattr(os, "pwritev", short_pwritev)
    tus = Tus(desk.operative)
    data = age_blob(3 * MiB + 999)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data)).status_code == 204
    monkeypatch.undo()
    assert calls >= len(data) // 4095
    assert (await Tus(desk.investigator).download(attachment_id)).content == data


async def test_a_local_object_of_the_wrong_size_is_not_finalized(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    key = secrets.token_hex(16)
    state = await storage.create(key)

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 100

    appended = await storage.append(key, state, 0, body())
    await storage.finalize(key, appended.state, 100)
    with pytest.raises(StorageError):
        await storage.finalize(key, appended.state, 101)


async def test_a_report_citing_one_attachment_twice_is_422(desk: Desk) -> None:
    await desk.world.publish_directory(desk.investigator, [desk.investigator])
    directory = desk.world.directory
    assert directory is not None
    data = age_blob(5000)
    digest = hashlib.sha256(data).hexdigest()
    tus = Tus(desk.operative)
    attachment_id, _ = await tus.create(len(data), digest)
    assert (await tus.patch(attachment_id, 0, data)).status_code == 204
    cited = AttachmentDigest(attachment_id, "a" * 64, digest)
    # The intake's own check, as report intake calls it before storing.
    assert desk.operative.account_id is not None
    async with transaction(
        desk.world.app.state.pool, account_id=desk.operative.account_id, role="operative"
    ) as conn:
        with pytest.raises(InvalidInput) as refused:
            await check_citations(
                conn,
                operative_id=desk.operative.account_id,
                report_id=uuid4(),
                attachments=[
                    ServerDigest(attachment_id, "a" * 64, digest),
                    ServerDigest(attachment_id, "b" * 64, digest),
                ],
            )
    assert [f.path for f in refused.value.fields] == ["$.attachments[1].attachment_id"]
    # Over HTTP: the same file cited twice is a 422, never the intake statement's 409.
    submission = seal_report(
        desk.operative.device, directory, TipReport(text="twice"), attachments=[cited]
    )
    body = msgspec.to_builtins(submission)
    body["attachments"] = body["attachments"] * 2
    response = await desk.operative.client.call(
        "POST", "/v1/reports", desk.operative.token(), json=body
    )
    assert response.status_code == 422, response.text


async def test_refused_access_to_another_accounts_evidence_is_audited(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = age_blob(5000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    intruder = Tus(desk.other_operative)
    assert (await intruder.head(attachment_id)).status_code == 404
    assert (await intruder.patch(attachment_id, 0, data)).status_code == 404
    assert (await intruder.request("DELETE", f"/v1/uploads/{attachment_id}")).status_code == 404
    assert (await tus.patch(attachment_id, 0, data)).status_code == 204
    assert (await intruder.download(attachment_id)).status_code == 404
    admin = await asyncpg.connect(desk.admin_url)
    try:
        rows = await admin.fetch(
            "SELECT actor_id, subject_type, detail FROM tipline.audit_events"
            " WHERE action = 'access.denied' AND subject_id = $1 ORDER BY id",
            str(attachment_id),
        )
    finally:
        await admin.close()
    assert len(rows) == 4
    assert {r["actor_id"] for r in rows} == {desk.other_operative.account_id}
    assert {r["subject_type"] for r in rows} == {"attachment"}
    assert all("attachment-not-visible" in str(r["detail"]) for r in rows)


async def duress_session(desk: Desk) -> None:
    operative = desk.operative
    duress = secrets.token_urlsafe(18)
    response = await operative.client.call(
        "PUT",
        "/v1/me/duress-password",
        operative.token(),
        json={"password": operative.password, "duress_password": duress},
    )
    assert response.status_code == 204
    desk.world.next_step()
    operative.session = await operative.client.login(operative.handle, duress, operative.totp())


Seen = tuple[int, set[str], str | None, str | None]


def shape(response: httpx.Response) -> Seen:
    varying = {"date", "x-request-id", "content-length"}
    return (
        response.status_code,
        {name.lower() for name in response.headers} - varying,
        response.headers.get("Upload-Offset"),
        response.headers.get("Upload-Length"),
    )


async def test_a_duress_head_looks_like_a_real_one(desk: Desk) -> None:
    data = age_blob(20_000)
    digest = hashlib.sha256(data).hexdigest()

    async def journey(tus: Tus) -> list[Seen]:
        attachment_id, created = await tus.create(len(data), digest)
        assert created.status_code == 201
        seen = [shape(await tus.head(attachment_id))]
        assert (await tus.patch(attachment_id, 0, data[:7000])).status_code == 204
        seen.append(shape(await tus.head(attachment_id)))
        wrong = await tus.patch(attachment_id, 0, data[:10])
        seen.append((wrong.status_code, set(), wrong.headers.get("Upload-Offset"), None))
        assert (await tus.patch(attachment_id, 7000, data[7000:])).status_code == 204
        seen.append(shape(await tus.head(attachment_id)))
        seen.append(shape(await tus.head(uuid4())))

        def status(response: httpx.Response) -> Seen:
            return (response.status_code, set(), response.headers.get("Upload-Offset"), None)

        seen.append(status(await tus.patch(uuid4(), 0, data[:10])))
        # A second upload: a retried creation declaring another digest, a chunk with a wrong
        # checksum, termination, then the id again (still taken), HEAD and DELETE after it.
        other = age_blob(9_000)
        second, created = await tus.create(len(other), hashlib.sha256(other).hexdigest())
        assert created.status_code == 201
        _, again = await tus.create(len(other), "0" * 64, attachment_id=second)
        seen.append(status(again))
        bad_sum = checksum(other[:100] + b"x")
        seen.append(status(await tus.patch(second, 0, other[:100], with_checksum=bad_sum)))
        seen.append(shape(await tus.head(second)))
        seen.append(status(await tus.request("DELETE", f"/v1/uploads/{second}")))
        _, reused = await tus.create(
            len(other), hashlib.sha256(other).hexdigest(), attachment_id=second
        )
        seen.append(status(reused))
        seen.append(shape(await tus.head(second)))
        seen.append(status(await tus.request("DELETE", f"/v1/uploads/{second}")))
        seen.append(status(await tus.request("DELETE", f"/v1/uploads/{attachment_id}")))
        return seen

    real = await journey(Tus(desk.operative))
    await duress_session(desk)
    coerced = await journey(Tus(desk.operative))
    assert coerced == real
    assert [s[0] for s in real] == [
        200,
        200,
        409,
        200,
        404,
        404,
        409,
        460,
        200,
        204,
        409,
        404,
        404,
        409,
    ]
    admin = await asyncpg.connect(desk.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM tipline.attachments") == 2
    finally:
        await admin.close()


async def test_sha1_checksums_and_tus_resumable_everywhere(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = age_blob(30_000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())

    def sha1(chunk: bytes) -> str:
        digest = hashlib.sha1(chunk, usedforsecurity=False).digest()
        return "sha1 " + base64.b64encode(digest).decode()

    wrong = await tus.patch(attachment_id, 0, data[:10_000], with_checksum=sha1(data[1:10_001]))
    assert wrong.status_code == 460
    ok = await tus.patch(attachment_id, 0, data[:10_000], with_checksum=sha1(data[:10_000]))
    assert ok.status_code == 204
    short = await tus.patch(attachment_id, 10_000, data[10_000:], with_checksum="sha1 AAAA")
    assert short.status_code == 400
    done = await tus.patch(
        attachment_id, 10_000, data[10_000:], with_checksum=checksum(data[10_000:])
    )
    assert done.status_code == 204

    http = desk.operative.client._http
    admin = await desk.world.invited(desk.investigator, "admin")
    framework = {
        "unauthenticated": await http.request(
            "HEAD", f"/v1/uploads/{attachment_id}", headers={"Tus-Resumable": "1.0.0"}
        ),
        "not a route": await tus.request("HEAD", "/v1/uploads/not-a-uuid"),
        "no such method": await tus.request("PUT", f"/v1/uploads/{attachment_id}"),
        "not an uploader": await Tus(admin).request("HEAD", f"/v1/uploads/{attachment_id}"),
        "discovery": await tus.request("OPTIONS", "/v1/uploads", tus=False),
    }
    statuses = {name: response.status_code for name, response in framework.items()}
    assert statuses["unauthenticated"] == 401
    assert statuses["not a route"] in (404, 405)
    assert statuses["no such method"] == 405
    assert statuses["not an uploader"] == 403
    for name, response in framework.items():
        assert response.headers.get("Tus-Resumable") == "1.0.0", name
        assert response.headers.get_list("Tus-Resumable") == ["1.0.0"], name
    # Other endpoints are not tus.
    download = await Tus(desk.investigator).download(attachment_id)
    assert "Tus-Resumable" not in download.headers


def test_settings_refuse_more_s3_parts_than_an_upload_can_hold() -> None:
    base = {"TIPLINE_EVIDENCE_STORAGE": "s3", "TIPLINE_EVIDENCE_S3_BUCKET": "evidence"}
    assert load_settings(base).evidence_s3_part_bytes == 8 * MiB
    # 1 TiB in 8 MiB parts is 131,072 parts: over S3's 10,000 and the recorded state's limit.
    with pytest.raises(SettingsError, match="TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES"):
        load_settings({**base, "TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES": str(2**40)})
    # 8 GiB in 8 MiB parts is 1,024: within S3's limit, but its state would not fit 64 KiB.
    with pytest.raises(SettingsError):
        load_settings({**base, "TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES": str(8 * 2**30)})
    fine = load_settings(
        {
            **base,
            "TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES": str(8 * 2**30),
            "TIPLINE_EVIDENCE_S3_PART_BYTES": str(64 * MiB),
        }
    )
    assert fine.evidence_max_upload_bytes == 8 * 2**30
    # The local backend has no parts.
    assert load_settings({"TIPLINE_EVIDENCE_MAX_UPLOAD_BYTES": str(2**40)}).evidence_storage == (
        "local"
    )
