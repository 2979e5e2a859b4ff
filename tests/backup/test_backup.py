"""A populated installation (made over real HTTP by the reference client) is backed up,
restored into a fresh database and a fresh evidence folder, and compared row by row and byte by
byte; damaged, forged or wrongly addressed backups change nothing."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import msgspec
import pyrage
import pytest
from cryptography.hazmat.primitives import serialization

from clients.reference_client.reports import seal_message
from server.audit import cli as audit_cli
from server.audit.sealer import seal_pending
from server.backup import service
from server.embedded import APP_ROLE
from server.evidence.storage import LocalStorage
from tests.conftest import Cluster, TestDatabase
from tests.retention.conftest import Filed, Site

# Everything a restore must bring back, compared row for row.
TABLES = (
    "accounts",
    "devices",
    "reports",
    "report_messages",
    "attachments",
    "attachment_custody",
    "leads",
    "lead_reports",
    "lead_shares",
    "officers",
    "key_directories",
    "audit_events",
    "audit_chain",
    "audit_checkpoints",
    "schema_migrations",
)


class Fresh(msgspec.Struct, frozen=True):
    admin_url: str
    app_url: str
    evidence: Path


class Populated(msgspec.Struct, frozen=True):
    filed: list[Filed]
    public_key_pem: bytes


@pytest.fixture
async def fresh(cluster: Cluster, tmp_path: Path) -> AsyncIterator[Fresh]:
    name = f"tipline_restored_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(cluster.url("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield Fresh(
            admin_url=cluster.url(name),
            app_url=cluster.url(name, APP_ROLE),
            evidence=tmp_path / "restored-evidence",
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def backup_key() -> tuple[str, str]:
    identity = pyrage.x25519.Identity.generate()
    return str(identity.to_public()), f"# offline backup key\n{identity}\n"


async def populate(site: Site) -> Populated:
    room = site.room
    verified = await site.file_report("verified tip", os.urandom(300_000))
    rejected = await site.file_report("rejected tip", os.urandom(70_000))
    await site.triage(verified.report_id, "in_review", "verified")
    await site.triage(rejected.report_id, "in_review", "rejected")
    message = seal_message(
        room.operative.device,
        room.directory.investigator_recipients(),
        room.directory.version,
        verified.report_id,
        "one more detail",
    )
    response = await room.call(
        room.operative, "POST", f"/v1/reports/{verified.report_id}/messages", message
    )
    assert response.status_code in (200, 201), response.text
    lead_id = await site.lead_from([verified.report_id])
    officer = room.officers[0]
    await room.vet(officer)
    await room.share(lead_id, officer)
    keyring = room.world.identity.keyring
    await seal_pending(room.world.app.state.pool, signing_key=keyring.audit_signing_key)
    pem = keyring.audit_signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Populated(filed=[verified, rejected], public_key_pem=pem)


async def rows(url: str, table: str) -> list[tuple[object, ...]]:
    conn = await asyncpg.connect(url, server_settings={"search_path": "tipline"})
    try:
        return [tuple(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")]
    finally:
        await conn.close()


async def user_relations(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'tipline'"
        )
        return found
    finally:
        await conn.close()


async def test_backup_then_restore_brings_back_every_row_and_byte_and_the_chain_verifies(
    site: Site,
    database: TestDatabase,
    fresh: Fresh,
    backup_key: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    populated = await populate(site)
    out = tmp_path / "tipline.backup.age"
    manifest = await service.create_backup(
        database_url=database.admin_url,
        storage=site.evidence.storage,
        out=out,
        recipient=backup_key[0],
    )
    assert oct(out.stat().st_mode & 0o777) == oct(0o600)
    assert manifest.counts["attachments"] == 2
    assert manifest.counts["shares"] == 1
    assert len(manifest.members) == 3  # the dump and two evidence objects
    # No plaintext: the file is age, and neither the dump's magic nor an object is visible.
    raw = out.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1\n")
    assert b"PGDMP" not in raw
    assert all(f.ciphertext[:4096] not in raw for f in populated.filed)

    restored_storage = LocalStorage(fresh.evidence)
    await service.restore_backup(
        backup=out,
        identity=backup_key[1],
        database_url=fresh.admin_url,
        storage=restored_storage,
        evidence_dir=fresh.evidence,
    )
    for table in TABLES:
        original = await rows(database.admin_url, table)
        assert original, f"{table} was not populated by the test"
        assert await rows(fresh.admin_url, table) == original, table
    conn = await asyncpg.connect(fresh.admin_url, server_settings={"search_path": "tipline"})
    try:
        stored = await conn.fetch(
            "SELECT id, storage_key FROM attachments WHERE status = 'complete'"
        )
    finally:
        await conn.close()
    by_id = {f.attachment_id: f.ciphertext for f in populated.filed}
    assert {r["id"] for r in stored} == set(by_id)
    for record in stored:
        assert restored_storage.path(record["storage_key"]).read_bytes() == by_id[record["id"]]

    # The audit chain, its signed checkpoints included, verifies on the restored copy, read by
    # the app's own role (so the grants and policies came back too).
    key_file = tmp_path / "audit.pem"
    key_file.write_bytes(populated.public_key_pem)
    capsys.readouterr()
    assert (
        await audit_cli.run_verify(
            fresh.app_url, public_key=audit_cli.load_public_key(populated.public_key_pem)
        )
        == 0
    )
    assert "audit chain OK" in capsys.readouterr().out


async def test_a_backup_restores_only_into_an_empty_database_and_evidence_folder(
    site: Site,
    database: TestDatabase,
    fresh: Fresh,
    backup_key: tuple[str, str],
    tmp_path: Path,
) -> None:
    await populate(site)
    out = tmp_path / "b.age"
    await service.create_backup(
        database_url=database.admin_url,
        storage=site.evidence.storage,
        out=out,
        recipient=backup_key[0],
    )
    with pytest.raises(service.BackupError, match="exists"):
        await service.create_backup(
            database_url=database.admin_url,
            storage=site.evidence.storage,
            out=out,
            recipient=backup_key[0],
        )
    before = await rows(database.admin_url, "reports")
    with pytest.raises(service.BackupError, match="not empty"):
        await service.restore_backup(
            backup=out,
            identity=backup_key[1],
            database_url=database.admin_url,
            storage=LocalStorage(fresh.evidence),
            evidence_dir=fresh.evidence,
        )
    assert await rows(database.admin_url, "reports") == before
    fresh.evidence.mkdir()
    (fresh.evidence / "leftover").write_bytes(b"x")
    with pytest.raises(service.BackupError, match="evidence folder"):
        await service.restore_backup(
            backup=out,
            identity=backup_key[1],
            database_url=fresh.admin_url,
            storage=LocalStorage(fresh.evidence),
            evidence_dir=fresh.evidence,
        )
    assert await user_relations(fresh.admin_url) == 0


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize("damage", ["wrong-identity", "header", "middle", "last-byte", "cut"])
async def test_a_wrong_identity_or_a_changed_file_restores_nothing(
    site: Site,
    database: TestDatabase,
    fresh: Fresh,
    backup_key: tuple[str, str],
    tmp_path: Path,
    damage: str,
) -> None:
    await populate(site)
    out = tmp_path / "b.age"
    await service.create_backup(
        database_url=database.admin_url,
        storage=site.evidence.storage,
        out=out,
        recipient=backup_key[0],
    )
    data = out.read_bytes()
    identity = backup_key[1]
    if damage == "wrong-identity":
        identity = str(pyrage.x25519.Identity.generate())
    elif damage == "header":
        out.write_bytes(_flip(data, data.index(b"\n---") - 5))
    elif damage == "middle":
        out.write_bytes(_flip(data, len(data) // 2))
    elif damage == "last-byte":
        out.write_bytes(_flip(data, len(data) - 1))
    else:
        out.write_bytes(data[: len(data) - 70_000])
    with pytest.raises(service.BackupError, match="cannot be decrypted"):
        await service.restore_backup(
            backup=out,
            identity=identity,
            database_url=fresh.admin_url,
            storage=LocalStorage(fresh.evidence),
            evidence_dir=fresh.evidence,
        )
    assert await user_relations(fresh.admin_url) == 0
    assert not fresh.evidence.exists() or not any(fresh.evidence.iterdir())


async def tipline(env: dict[str, str], *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server.cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_commands_refuse_the_app_role_and_round_trip_with_an_explicit_backup_role(
    site: Site,
    database: TestDatabase,
    fresh: Fresh,
    backup_key: tuple[str, str],
    tmp_path: Path,
) -> None:
    await populate(site)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database.app_url,
        "TIPLINE_DATA_DIR": str(tmp_path / "data"),
        "TIPLINE_EVIDENCE_DIR": str(site.evidence.settings.evidence_path),
        "TIPLINE_BACKUP_RECIPIENT": backup_key[0],
    }
    out = tmp_path / "cli.age"
    # An external database without --database-url: refused, nothing written.
    code, said = await tipline(env, "backup", "--out", str(out))
    assert code == 2, said
    assert "--database-url is required" in said
    assert not out.exists()
    code, said = await tipline(
        env, "backup", "--out", str(out), "--database-url", database.admin_url
    )
    assert code == 0, said
    identity_file = tmp_path / "backup.key"
    identity_file.write_text(backup_key[1])
    identity_file.chmod(0o600)
    restore = ["restore", "--in", str(out), "--identity", str(identity_file)]
    code, said = await tipline(env, *restore, "--verify-only")
    assert code == 0, said
    env["TIPLINE_EVIDENCE_DIR"] = str(fresh.evidence)
    code, said = await tipline(env, *restore, "--database-url", fresh.admin_url)
    assert code == 0, said
    assert "restored the backup" in said
    assert await rows(fresh.admin_url, "reports") == await rows(database.admin_url, "reports")
    # Once restored, the database is no longer fresh: a second restore is refused.
    code, said = await tipline(env, *restore, "--database-url", fresh.admin_url)
    assert code == 2, said
    assert "not empty" in said


async def test_a_bypassrls_backup_role_can_back_up_and_the_app_role_cannot(
    site: Site,
    database: TestDatabase,
    cluster: Cluster,
    backup_key: tuple[str, str],
    tmp_path: Path,
) -> None:
    await populate(site)
    role = f"tipline_backup_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database.admin_url)
    try:
        # What docs/operations.md asks an operator to create for an external database.
        await admin.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER BYPASSRLS")
        await admin.execute(f"GRANT pg_read_all_data TO {role}")
        try:
            manifest = await service.create_backup(
                database_url=cluster.url(database.name, role),
                storage=site.evidence.storage,
                out=tmp_path / "role.age",
                recipient=backup_key[0],
            )
            assert manifest.counts["attachments"] == 2
            assert manifest.counts["audit_events"] > 0
            # The app's own role is bound by row-level security: pg_dump refuses to dump a
            # table whose policies would hide rows, so no partial backup can be taken with it.
            with pytest.raises(service.BackupError, match="pg_dump failed"):
                await service.create_backup(
                    database_url=database.app_url,
                    storage=site.evidence.storage,
                    out=tmp_path / "app.age",
                    recipient=backup_key[0],
                )
            assert not (tmp_path / "app.age").exists()
            assert not (tmp_path / "app.age.partial").exists()
        finally:
            await admin.execute(f"DROP OWNED BY {role}")
            await admin.execute(f"DROP ROLE {role}")
    finally:
        await admin.close()


def test_a_database_password_goes_to_the_environment_never_the_command_line() -> None:
    # Any local user can read a process's command line; only its owner its environment.
    url, env = service.libpq_target(
        "postgresql://backup:s%40cret@db.internal:5432/tipline?sslmode=verify-full"
    )
    assert url == "postgresql://backup@db.internal:5432/tipline?sslmode=verify-full"
    assert env["PGPASSWORD"] == "s@cret"
    plain = "postgresql://postgres@/tipline?host=%2Ftmp%2Fx&port=5432"
    assert service.libpq_target(plain)[0] == plain
