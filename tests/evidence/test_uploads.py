"""tus 1.0.0 uploads against real PostgreSQL, real HTTP and both storage backends (a local
folder and moto's S3 server): creation, offset, resume, checksum, expiry, termination,
completion digest, ownership."""

from __future__ import annotations

import hashlib
import secrets
from uuid import uuid4

import asyncpg

from server.evidence.service import sweep_expired
from tests.evidence.conftest import Desk, Tus, age_blob, checksum, stored_object_exists

PROBLEM = "application/problem+json"


def blob(size: int) -> bytes:
    return age_blob(size)


async def test_create_head_patch_resume_complete(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(7 * 2**20 + 123)  # more than one S3 part, and a tail
    attachment_id, created = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert created.status_code == 201, created.text
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert created.headers["Location"].endswith(f"/v1/uploads/{attachment_id}")
    assert "Upload-Expires" in created.headers
    assert await tus.offset(attachment_id) == 0

    first = data[: 3 * 2**20 + 1]
    patched = await tus.patch(attachment_id, 0, first, with_checksum=checksum(first))
    assert patched.status_code == 204, patched.text
    assert int(patched.headers["Upload-Offset"]) == len(first)
    # A client that lost the answer asks where to resume, then sends only the rest.
    offset = await tus.offset(attachment_id)
    assert offset == len(first)
    rest = data[offset:]
    done = await tus.patch(attachment_id, offset, rest, with_checksum=checksum(rest))
    assert done.status_code == 204, done.text
    assert int(done.headers["Upload-Offset"]) == len(data)

    head = await tus.head(attachment_id)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Cache-Control"] == "no-store"

    download = await Tus(desk.investigator).download(attachment_id)
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert download.headers["Content-Disposition"] == f'attachment; filename="{attachment_id}.bin"'
    assert download.headers["X-Content-Type-Options"] == "nosniff"


async def test_creation_with_upload_and_a_retried_creation(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(100_000)
    digest = hashlib.sha256(data).hexdigest()
    attachment_id, created = await tus.create(len(data), digest, content=data[:40_000])
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == "40000"
    # The same creation again (a client that never saw the 201) finds the same upload.
    _, again = await tus.create(len(data), digest, attachment_id=attachment_id)
    assert again.status_code == 201
    assert again.headers["Upload-Offset"] == "40000"
    # Someone else cannot take the id.
    _, taken = await Tus(desk.other_operative).create(
        len(data), digest, attachment_id=attachment_id
    )
    assert taken.status_code == 409
    done = await tus.patch(attachment_id, 40_000, data[40_000:])
    assert done.status_code == 204


async def test_a_wrong_checksum_is_460_and_the_chunk_is_discarded(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(6 * 2**20 + 17)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    half = 2 * 2**20
    assert (
        await tus.patch(attachment_id, 0, data[:half], with_checksum=checksum(data[:half]))
    ).status_code == 204

    # The chunk as sent differs from the one the checksum was made over (corruption in transit).
    corrupted = bytearray(data[half:])
    corrupted[12345] ^= 0xFF
    refused = await tus.patch(
        attachment_id, half, bytes(corrupted), with_checksum=checksum(data[half:])
    )
    assert refused.status_code == 460
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["status"] == 460
    assert refused.json()["type"].endswith(":checksum-mismatch")
    assert refused.headers["Tus-Resumable"] == "1.0.0"
    assert await tus.offset(attachment_id) == half

    # The discarded bytes are gone: the correct chunk completes with the right digest.
    ok = await tus.patch(attachment_id, half, data[half:], with_checksum=checksum(data[half:]))
    assert ok.status_code == 204, ok.text
    assert (await Tus(desk.investigator).download(attachment_id)).content == data


async def test_unsupported_checksum_algorithm_is_400(desk: Desk) -> None:
    tus = Tus(desk.operative)
    attachment_id, _ = await tus.create(10, hashlib.sha256(b"0123456789").hexdigest())
    refused = await tus.patch(attachment_id, 0, b"0123456789", with_checksum="md5 AAAA")
    assert refused.status_code == 400
    assert await tus.offset(attachment_id) == 0


async def test_a_patch_at_the_wrong_offset_is_409(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(50_000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data[:10_000])).status_code == 204
    for wrong in (0, 5_000, 20_000):
        refused = await tus.patch(attachment_id, wrong, data[wrong : wrong + 1000])
        assert refused.status_code == 409, wrong
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert refused.headers["Upload-Offset"] == "10000"
    assert await tus.offset(attachment_id) == 10_000


async def test_protocol_preconditions(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(1000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    no_version = await tus.request(
        "PATCH",
        f"/v1/uploads/{attachment_id}",
        headers={"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
        content=data,
        tus=False,
    )
    assert no_version.status_code == 412
    assert no_version.headers["Tus-Version"] == "1.0.0"
    wrong_type = await tus.patch(
        attachment_id, 0, data, headers={"Content-Type": "application/octet-stream"}
    )
    assert wrong_type.status_code == 415
    too_long = await tus.patch(attachment_id, 0, data + b"x")
    assert too_long.status_code == 413
    assert await tus.offset(attachment_id) == 0
    # Plaintext metadata (a filename) is refused outright.
    _, named = await tus.create(
        10,
        "0" * 64,
        extra={"Upload-Metadata": "filename ZXZpZGVuY2UuanBn"},
    )
    assert named.status_code == 422
    options = await tus.request("OPTIONS", "/v1/uploads", tus=False)
    assert options.status_code == 204, options.text
    assert "checksum" in options.headers["Tus-Extension"]
    assert options.headers["Tus-Checksum-Algorithm"] == "sha1,sha256"


async def test_another_accounts_upload_is_404(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(20_000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data[:5000])).status_code == 204
    for intruder in (desk.other_operative, desk.investigator):
        other = Tus(intruder)
        assert (await other.head(attachment_id)).status_code == 404
        assert (await other.patch(attachment_id, 5000, data[5000:])).status_code == 404
        assert (await other.request("DELETE", f"/v1/uploads/{attachment_id}")).status_code == 404
        unknown = await other.head(uuid4())
        assert unknown.status_code == 404
    assert await tus.offset(attachment_id) == 5000
    # Nor can another operative download a complete attachment.
    assert (await tus.patch(attachment_id, 5000, data[5000:])).status_code == 204
    stranger = await Tus(desk.other_operative).download(attachment_id)
    unknown_download = await Tus(desk.other_operative).download(uuid4())
    assert stranger.status_code == unknown_download.status_code == 404
    assert stranger.json()["detail"] == unknown_download.json()["detail"]
    # The owner may fetch it back while no report has been triaged.
    assert (await tus.download(attachment_id)).content == data


async def test_a_digest_mismatch_on_completion_is_refused(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(300_000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(b"something else").hexdigest())
    assert (await tus.patch(attachment_id, 0, data[:100_000])).status_code == 204
    refused = await tus.patch(attachment_id, 100_000, data[100_000:])
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert (await tus.head(attachment_id)).status_code == 404
    assert (await Tus(desk.investigator).download(attachment_id)).status_code == 404
    assert not await stored_object_exists(desk, attachment_id)
    custody = (await Tus(desk.investigator).custody(attachment_id)).json()
    assert [e["event"] for e in custody["events"]] == ["received", "deleted"]


async def test_termination(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(30_000)
    attachment_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(attachment_id, 0, data[:10_000])).status_code == 204
    assert await stored_object_exists(desk, attachment_id)
    deleted = await tus.request("DELETE", f"/v1/uploads/{attachment_id}")
    assert deleted.status_code == 204
    assert deleted.headers["Tus-Resumable"] == "1.0.0"
    assert (await tus.head(attachment_id)).status_code == 404
    assert (await tus.patch(attachment_id, 10_000, data[10_000:])).status_code == 404
    assert not await stored_object_exists(desk, attachment_id)

    # Complete evidence cannot be terminated.
    done_id, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(done_id, 0, data)).status_code == 204
    assert (await tus.request("DELETE", f"/v1/uploads/{done_id}")).status_code == 409
    assert (await Tus(desk.investigator).download(done_id)).content == data


async def test_expired_uploads_are_swept_with_their_bytes(desk: Desk) -> None:
    tus = Tus(desk.operative)
    data = blob(40_000)
    abandoned, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(abandoned, 0, data[:1000])).status_code == 204
    fresh, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    finished, _ = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert (await tus.patch(finished, 0, data)).status_code == 204
    admin = await asyncpg.connect(desk.admin_url)
    try:
        await admin.execute(
            "UPDATE tipline.attachments SET expires_at = now() - interval '1 second'"
            " WHERE id = ANY($1::uuid[])",
            [abandoned, finished],
        )
    finally:
        await admin.close()
    # An expired upload is gone for the client even before the sweeper runs.
    assert (await tus.head(abandoned)).status_code == 404

    swept = await sweep_expired(desk.evidence, desk.world.app.state.pool)
    assert swept == 1
    assert not await stored_object_exists(desk, abandoned)
    assert await stored_object_exists(desk, fresh)
    assert (await tus.head(fresh)).status_code == 200
    # Complete evidence never expires.
    assert (await Tus(desk.investigator).download(finished)).content == data
    custody = (await Tus(desk.investigator).custody(abandoned)).json()
    assert [e["event"] for e in custody["events"]] == ["received", "deleted"]
    assert custody["events"][-1]["actor_role"] == "evidence_sweeper"
    assert custody["status"] == "deleted"


async def test_a_duress_session_sees_uploads_accepted_and_nothing_is_stored(desk: Desk) -> None:
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
    tus = Tus(operative)
    data = blob(20_000)
    attachment_id, created = await tus.create(len(data), hashlib.sha256(data).hexdigest())
    assert created.status_code == 201
    patched = await tus.patch(attachment_id, 0, data)
    assert patched.status_code == 204
    assert patched.headers["Upload-Offset"] == str(len(data))
    admin = await asyncpg.connect(desk.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM tipline.attachments") == 0
    finally:
        await admin.close()
