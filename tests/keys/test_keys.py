"""The key directory: only the root key's signature, only forward, only true entries.

Each test drives the live server over HTTP through the reference client, and checks the
client's own verifier against the same directories, so server and client refuse alike.
"""

from __future__ import annotations

import asyncio
import base64
import stat
import uuid
from pathlib import Path
from unittest.mock import ANY

import asyncpg
import httpx
import msgspec
import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client import keys
from clients.reference_client.api import ApiError
from clients.reference_client.device import DeviceKeyPair
from server import db
from server.identity.service import root_key_fingerprint
from server.keys import service
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import TestDatabase, world_with
from tests.keys.conftest import ensure_keys_routes, entry_for

PROBLEM = "urn:tipline:problem:"


async def put(actor: Actor, signed: keys.SignedDirectory) -> tuple[int, dict[str, object]]:
    response = await actor.client.call(
        "PUT", keys.KEYS_PATH, actor.token(), json=msgspec.to_builtins(signed)
    )
    body: dict[str, object] = response.json()
    return response.status_code, body


async def stored_versions(database: TestDatabase) -> list[int]:
    conn = await asyncpg.connect(database.admin_url)
    try:
        rows = await conn.fetch("SELECT version FROM tipline.key_directories ORDER BY version")
    finally:
        await conn.close()
    return [row["version"] for row in rows]


async def audit_rows(database: TestDatabase, action: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database.admin_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT actor_id, actor_role, subject_id, detail FROM tipline.audit_events"
            " WHERE action = $1",
            action,
        )
    finally:
        await conn.close()
    return rows


def sign_raw(key: Ed25519PrivateKey, version: int, directory_bytes: bytes) -> keys.SignedDirectory:
    return keys.SignedDirectory(
        version=version,
        directory=base64.b64encode(directory_bytes).decode("ascii"),
        signature=base64.urlsafe_b64encode(key.sign(keys.DIRECTORY_CONTEXT + directory_bytes))
        .rstrip(b"=")
        .decode("ascii"),
    )


async def staff(world: World) -> tuple[Actor, Actor]:
    investigator = await world.first_investigator()
    officer = await world.invited(investigator, "officer")
    return investigator, officer


# --- accepted -------------------------------------------------------------------------------


async def test_a_root_signed_directory_is_accepted_and_served_byte_identical(
    keyed: World, root_key: Ed25519PrivateKey, settings: Settings
) -> None:
    investigator, officer = await staff(keyed)
    operative = await keyed.invited(investigator, "operative")
    admin = await keyed.invited(investigator, "admin")
    signed = keys.sign_directory_with(
        root_key, 1, [entry_for(investigator), entry_for(officer)], "2026-11-30T07:00:00Z"
    )

    published = await keys.publish_directory(investigator.client, investigator.token(), signed)
    assert published == signed

    root_public = keys.public_key_b64(root_key)
    for reader in (operative, officer, admin, investigator):
        served = await keys.fetch_directory(reader.client, reader.token())
        assert served == signed, reader.role
        directory = keys.verify_directory(served, root_public, last_seen_version=1)
        assert directory.version == 1
        assert directory.investigator_recipients() == [str(investigator.age_identity.to_public())]

    # What other capabilities read on the server side.
    async with db.transaction(keyed.app.state.pool, role="authenticator") as conn:
        current = await service.current_directory(conn)
    assert current is not None
    assert service.investigator_count(current) == 1
    assert service.investigator_recipients(current) == [str(investigator.age_identity.to_public())]
    assert {e.account_id for e in current.entries} == {
        investigator.account_id,
        officer.account_id,
    }


async def test_publishing_is_audited_in_the_publishers_name(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    signed = keys.sign_directory_with(root_key, 3, [entry_for(investigator), entry_for(officer)])
    assert (await put(investigator, signed))[0] == 200

    rows = await audit_rows(database, "keys.directory_published")
    assert len(rows) == 1
    assert rows[0]["actor_id"] == investigator.account_id
    assert rows[0]["actor_role"] == "investigator"
    assert rows[0]["subject_id"] == "3"
    assert msgspec.json.decode(rows[0]["detail"]) == {
        "version": 3,
        "entries": 2,
        "investigators": 1,
    }


async def test_a_newer_version_replaces_the_current_one(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    first = keys.sign_directory_with(root_key, 1, [entry_for(investigator), entry_for(officer)])
    second = keys.sign_directory_with(root_key, 7, [entry_for(investigator)])
    assert (await put(investigator, first))[0] == 200
    assert (await put(investigator, second))[0] == 200
    assert await keys.fetch_directory(officer.client, officer.token()) == second
    assert await stored_versions(database) == [1, 7]


# --- refused: signature -----------------------------------------------------------------------


async def test_a_directory_signed_by_another_key_is_refused_by_server_and_client(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    impostor = Ed25519PrivateKey.generate()
    forged = keys.sign_directory_with(impostor, 1, [entry_for(investigator), entry_for(officer)])

    status, problem = await put(investigator, forged)
    assert status == 422
    assert problem["type"] == PROBLEM + "invalid-directory"
    assert await stored_versions(database) == []
    assert await audit_rows(database, "keys.directory_published") == []

    with pytest.raises(keys.DirectoryError, match="not signed by the organisation root key"):
        keys.verify_directory(forged, keys.public_key_b64(root_key), last_seen_version=None)


async def test_changed_bytes_under_a_valid_signature_are_refused(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    genuine = keys.sign_directory_with(root_key, 1, [entry_for(investigator)])
    # Swap in the officer's recipient, keep the root signature: the substitution a compromised
    # server would attempt.
    raw = base64.b64decode(genuine.directory)
    swapped = raw.replace(
        str(investigator.age_identity.to_public()).encode(),
        str(officer.age_identity.to_public()).encode(),
    )
    assert swapped != raw
    tampered = msgspec.structs.replace(genuine, directory=base64.b64encode(swapped).decode("ascii"))
    assert (await put(investigator, tampered))[0] == 422
    assert await stored_versions(database) == []
    with pytest.raises(keys.DirectoryError):
        keys.verify_directory(tampered, keys.public_key_b64(root_key), None)


async def test_without_a_configured_root_key_nothing_is_accepted(
    unkeyed: World, database: TestDatabase
) -> None:
    investigator = await unkeyed.first_investigator()
    signed = keys.sign_directory_with(Ed25519PrivateKey.generate(), 1, [entry_for(investigator)])
    status, problem = await put(investigator, signed)
    assert status == 503
    assert problem["detail"] == "no organisation root key is configured"
    assert await stored_versions(database) == []


async def test_the_wire_version_must_be_the_signed_one(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator = await keyed.first_investigator()
    signed = keys.sign_directory_with(root_key, 2, [entry_for(investigator)])
    relabelled = msgspec.structs.replace(signed, version=9)
    status, problem = await put(investigator, relabelled)
    assert status == 422
    assert problem["errors"] == [
        {"path": "$.version", "message": "differs from the signed version"}
    ]
    assert await stored_versions(database) == []
    with pytest.raises(keys.DirectoryError, match="version"):
        keys.verify_directory(relabelled, keys.public_key_b64(root_key), None)


async def test_a_non_canonical_encoding_is_refused_even_when_signed(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator = await keyed.first_investigator()
    canonical = keys.encode_directory(1, [entry_for(investigator)], "2026-11-30T07:00:00Z")
    document = msgspec.json.decode(canonical)
    # Pretty-printed, and a duplicate "version" key that parsers resolve differently.
    variants = [
        msgspec.json.format(canonical, indent=2),
        canonical[:-1] + b',"version":2}',
        msgspec.json.encode({**document, "extra": 1}, order="sorted"),
    ]
    for raw in variants:
        status, _ = await put(investigator, sign_raw(root_key, 1, raw))
        assert status == 422, raw[:60]
        with pytest.raises(keys.DirectoryError):
            keys.verify_directory(sign_raw(root_key, 1, raw), keys.public_key_b64(root_key), None)
    assert await stored_versions(database) == []
    # The canonical bytes themselves pass both.
    assert (await put(investigator, sign_raw(root_key, 1, canonical)))[0] == 200
    keys.verify_directory(sign_raw(root_key, 1, canonical), keys.public_key_b64(root_key), None)


# --- refused: versions ------------------------------------------------------------------------


@pytest.mark.parametrize("version", [4, 5])
async def test_an_older_or_equal_version_is_refused_with_the_current_one(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase, version: int
) -> None:
    investigator, officer = await staff(keyed)
    entries = [entry_for(investigator), entry_for(officer)]
    current = keys.sign_directory_with(root_key, 5, entries)
    assert (await put(investigator, current))[0] == 200

    replay = keys.sign_directory_with(root_key, version, [entry_for(investigator)])
    status, problem = await put(investigator, replay)
    assert status == 409
    assert problem["type"] == PROBLEM + "stale-directory"
    assert "version is 5" in str(problem["detail"])
    assert await stored_versions(database) == [5]
    assert await keys.fetch_directory(officer.client, officer.token()) == current


def test_the_client_refuses_a_directory_that_goes_backwards(root_key: Ed25519PrivateKey) -> None:
    entry = keys.DirectoryEntry(
        account_id=uuid.uuid4(),
        age_recipient="age1" + "q" * 58,
        device_keys=[DeviceKeyPair.generate().public_jwk()],
        role="investigator",
    )
    old = keys.sign_directory_with(root_key, 4, [entry])
    public = keys.public_key_b64(root_key)
    with pytest.raises(keys.DirectoryError, match="older"):
        keys.verify_directory(old, public, last_seen_version=5)
    # A re-fetch of the directory already accepted is not a rollback.
    assert keys.verify_directory(old, public, last_seen_version=4).version == 4
    assert keys.verify_directory(old, public, last_seen_version=None).version == 4


async def test_concurrent_publishers_of_one_version_store_exactly_one(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator = await keyed.first_investigator()
    # One session each: concurrent requests on a single session are the identity layer's
    # business, and not what this test is about.
    publishers = [investigator] + [
        await keyed.invited(investigator, "investigator") for _ in range(3)
    ]
    signed = keys.sign_directory_with(root_key, 2, [entry_for(p) for p in publishers])
    results = await asyncio.gather(*(put(actor, signed) for actor in publishers))
    assert sorted(status for status, _ in results) == [200, 409, 409, 409]
    assert await stored_versions(database) == [2]
    assert len(await audit_rows(database, "keys.directory_published")) == 1


# --- refused: entries -------------------------------------------------------------------------


async def test_each_entry_must_match_a_live_account(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    deputy = await keyed.invited(investigator, "investigator")
    operative = await keyed.invited(investigator, "operative")
    admin = await keyed.invited(investigator, "admin")
    suspended = await keyed.invited(investigator, "officer")
    response = await admin.client.call(
        "POST", f"/v1/accounts/{suspended.account_id}/suspend", admin.token()
    )
    assert response.status_code == 204
    cases = {
        "a recipient nobody enrolled": entry_for(
            officer, age_recipient=str(pyrage.x25519.Identity.generate().to_public())
        ),
        "another account's recipient": entry_for(
            investigator, age_recipient=str(officer.age_identity.to_public())
        ),
        "an officer listed as investigator": entry_for(officer, role="investigator"),
        "an investigator listed as officer": entry_for(investigator, role="officer"),
        "an operative": entry_for(operative),
        "an admin": entry_for(admin),
        "a suspended account": entry_for(suspended),
        "an unknown account": entry_for(officer, account_id=uuid.uuid4()),
        "a device key the account does not hold": entry_for(
            officer, device_keys=[DeviceKeyPair.generate().public_jwk()]
        ),
    }
    recipient, role = "age recipient is not the one", "role is not the account's"
    reasons = {
        "a recipient nobody enrolled": recipient,
        "another account's recipient": recipient,
        "an officer listed as investigator": role,
        "an investigator listed as officer": role,
        "an operative": role,
        "an admin": role,
        "a suspended account": "not active",
        "an unknown account": "no existing account",
        "a device key the account does not hold": "not a live device",
    }
    for version, (case, bad) in enumerate(cases.items(), start=1):
        # The bad entry second: the problem must name the offending index.
        signed = keys.sign_directory_with(root_key, version, [entry_for(deputy), bad])
        status, problem = await put(investigator, signed)
        assert status == 422, case
        assert problem["type"] == PROBLEM + "invalid-directory", case
        assert problem["errors"] == [{"path": "$.entries[1]", "message": ANY}], case
        assert reasons[case] in str(problem["detail"]), case
    assert await stored_versions(database) == []
    assert await audit_rows(database, "keys.directory_published") == []


async def test_operatives_cannot_be_named_at_all(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator = await keyed.first_investigator()
    operative = await keyed.invited(investigator, "operative")
    good = msgspec.to_builtins(entry_for(investigator))
    bad = {**msgspec.to_builtins(entry_for(operative)), "role": "operative"}
    raw = msgspec.json.encode(
        {"entries": [good, bad], "issued_at": "2026-11-30T07:00:00Z", "version": 1},
        order="sorted",
    )
    status, problem = await put(investigator, sign_raw(root_key, 1, raw))
    assert status == 422
    assert problem["errors"][0]["path"] == "$.entries[1].role"  # type: ignore[index]
    assert await stored_versions(database) == []


async def test_a_directory_without_an_investigator_is_refused(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    signed = keys.sign_directory_with(root_key, 1, [entry_for(officer)])
    assert (await put(investigator, signed))[0] == 422
    twice = keys.sign_directory_with(root_key, 1, [entry_for(investigator)] * 2)
    assert (await put(investigator, twice))[0] == 422
    assert await stored_versions(database) == []


# --- who may ---------------------------------------------------------------------------------


async def test_only_investigators_publish(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    operative = await keyed.invited(investigator, "operative")
    admin = await keyed.invited(investigator, "admin")
    signed = keys.sign_directory_with(root_key, 1, [entry_for(investigator), entry_for(officer)])
    for actor in (operative, officer, admin):
        status, problem = await put(actor, signed)
        assert status == 403, actor.role
        assert problem["type"] == PROBLEM + "forbidden"
    assert await stored_versions(database) == []


async def test_nothing_is_served_before_the_first_directory(unkeyed: World) -> None:
    investigator = await unkeyed.first_investigator()
    operative = await unkeyed.invited(investigator, "operative")
    with pytest.raises(ApiError) as refused:
        await keys.fetch_directory(operative.client, operative.token())
    assert refused.value.problem.status == 404


async def test_reading_needs_a_session(keyed: World) -> None:
    async with httpx.AsyncClient(base_url=keyed.base_url) as http:
        response = await http.get(keys.KEYS_PATH)
    assert response.status_code == 401


# --- the database holds the line too ---------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE key_directories SET version = 99",
        "UPDATE key_directories SET published_at = now() - interval '1 year'",
        "DELETE FROM key_directories",
        "TRUNCATE key_directories",
    ],
)
async def test_the_app_role_cannot_rewrite_a_published_directory(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase, statement: str
) -> None:
    investigator = await keyed.first_investigator()
    signed = keys.sign_directory_with(root_key, 1, [entry_for(investigator)])
    assert (await put(investigator, signed))[0] == 200
    pool = keyed.app.state.pool
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(
            pool, account_id=investigator.account_id, role="investigator"
        ) as conn:
            await conn.execute(statement)
    assert await stored_versions(database) == [1]


async def test_row_level_security_lets_only_a_real_investigator_insert(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator, officer = await staff(keyed)
    signed = keys.sign_directory_with(root_key, 5, [entry_for(investigator)])
    raw = base64.b64decode(signed.directory)
    sig = bytes(64)
    insert = (
        "INSERT INTO key_directories (version, directory, signature, published_by)"
        " VALUES ($1, $2, $3, $4)"
    )
    pool = keyed.app.state.pool
    contexts = [
        # Another role, in its own name.
        ({"account_id": officer.account_id, "role": "officer"}, officer.account_id),
        # An investigator, in someone else's name.
        ({"account_id": investigator.account_id, "role": "investigator"}, officer.account_id),
        # An investigator's duress session.
        (
            {"account_id": investigator.account_id, "role": "investigator", "duress": True},
            investigator.account_id,
        ),
        ({"role": "authenticator"}, investigator.account_id),
    ]
    for context, publisher in contexts:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with db.transaction(pool, **context) as conn:  # type: ignore[arg-type]
                await conn.execute(insert, 5, raw, sig, publisher)
    assert await stored_versions(database) == []


async def test_the_database_refuses_a_version_that_does_not_go_up(
    keyed: World, root_key: Ed25519PrivateKey, database: TestDatabase
) -> None:
    investigator = await keyed.first_investigator()
    assert (
        await put(investigator, keys.sign_directory_with(root_key, 5, [entry_for(investigator)]))
    )[0] == 200
    pool = keyed.app.state.pool
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="not above"):
        async with db.transaction(
            pool, account_id=investigator.account_id, role="investigator"
        ) as conn:
            await conn.execute(
                "INSERT INTO key_directories (version, directory, signature, published_by)"
                " VALUES (4, '\\x7b7d', $1, $2)",
                bytes(64),
                investigator.account_id,
            )
    assert await stored_versions(database) == [5]


async def test_every_role_may_read_the_directory_in_sql(
    keyed: World, root_key: Ed25519PrivateKey
) -> None:
    investigator = await keyed.first_investigator()
    operative = await keyed.invited(investigator, "operative")
    assert (
        await put(investigator, keys.sign_directory_with(root_key, 1, [entry_for(investigator)]))
    )[0] == 200
    pool = keyed.app.state.pool
    async with db.transaction(pool, account_id=operative.account_id, role="operative") as conn:
        assert await conn.fetchval("SELECT count(*) FROM key_directories") == 1
    # No one at all: nothing.
    async with db.transaction(pool) as conn:
        assert await conn.fetchval("SELECT count(*) FROM key_directories") == 0


# --- the root key and its fingerprint ---------------------------------------------------------


def test_client_and_server_fingerprints_agree(tmp_path: Path) -> None:
    public = keys.init_root(tmp_path / "root.age", "correct horse battery staple")
    assert keys.root_fingerprint(public) == root_key_fingerprint(public)
    other = keys.public_key_b64(Ed25519PrivateKey.generate())
    assert keys.root_fingerprint(other) == root_key_fingerprint(other)
    assert keys.root_fingerprint(public) != keys.root_fingerprint(other)
    keys.check_root_key(public, keys.root_fingerprint(public))
    with pytest.raises(keys.DirectoryError, match="pinned"):
        keys.check_root_key(other, keys.root_fingerprint(public))


def test_the_root_key_file_is_private_encrypted_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "root.age"
    public = keys.init_root(path, "correct horse battery staple")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"age-encryption.org/v1\n")
    key = keys.load_root_key(path, "correct horse battery staple")
    assert keys.public_key_b64(key) == public
    with pytest.raises(keys.DirectoryError, match="wrong passphrase"):
        keys.load_root_key(path, "wrong horse battery staple")
    with pytest.raises(keys.DirectoryError, match="never overwritten"):
        keys.init_root(path, "another passphrase entirely")
    assert keys.public_key_b64(keys.load_root_key(path, "correct horse battery staple")) == public


async def test_a_directory_signed_from_the_key_file_is_accepted(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "root.age"
    public = keys.init_root(path, "correct horse battery staple")
    async with world_with(settings, root_public_key=public) as world:
        ensure_keys_routes(world.app)
        investigator = await world.first_investigator()
        signed = keys.sign_directory(
            path, "correct horse battery staple", 1, [entry_for(investigator)]
        )
        assert (await put(investigator, signed))[0] == 200
        served = await keys.fetch_directory(investigator.client, investigator.token())
        assert keys.verify_directory(served, public, None).entries == [entry_for(investigator)]


async def test_a_full_directory_fits_and_a_larger_body_does_not(
    keyed: World, root_key: Ed25519PrivateKey
) -> None:
    investigator = await keyed.first_investigator()
    full = [
        keys.DirectoryEntry(
            account_id=uuid.uuid4(),
            age_recipient=str(pyrage.x25519.Identity.generate().to_public()),
            device_keys=[DeviceKeyPair.generate().public_jwk() for _ in range(4)],
            role="investigator",
        )
        for _ in range(200)
    ]
    signed = keys.sign_directory_with(root_key, 1, full)
    assert len(msgspec.json.encode(signed)) > 2 * 65_536
    # Past the body limit and the signature: refused only for naming accounts that do not exist.
    status, problem = await put(investigator, signed)
    assert status == 422
    assert problem["errors"] == [{"path": "$.entries[0]", "message": "names no existing account"}]

    oversized = msgspec.structs.replace(signed, directory="A" * 300_000)
    status, _ = await put(investigator, oversized)
    assert status == 413
