"""The key-rotation runbooks in docs/operations.md, run against a live server with the
reference client: an investigator's age key is replaced in a new directory version (old reports
stay readable with the old identity only), and the organisation root key is replaced (the
server then accepts only directories the new root signed, and clients pinned to it refuse the
old root's)."""

from __future__ import annotations

import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.keys import (
    DirectoryError,
    fetch_directory,
    public_key_b64,
    publish_directory,
    sign_directory_with,
    verify_directory,
)
from clients.reference_client.reports import TipReport, open_report, seal_report, submit
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import world_with


async def _report(
    world: World, operative: Actor, root: str, seen: int | None, text: str
) -> uuid.UUID:
    # The phone fetches the directory and trusts it only under its pinned root key.
    directory = verify_directory(
        await fetch_directory(operative.client, operative.token()), root, seen
    )
    receipt = await submit(
        operative.client,
        operative.token(),
        seal_report(operative.device, directory, TipReport(text=text)),
    )
    return receipt.report_id


async def _open(reader: Actor, report_id: uuid.UUID, identity: str) -> str:
    response = await reader.client.call("GET", f"/v1/reports/{report_id}", reader.token())
    assert response.status_code == 200, response.text
    return open_report(response.json(), identity).text


async def test_rotating_an_investigators_age_key_keeps_old_reports_readable_with_the_old_key(
    settings: Settings,
) -> None:
    root_key = Ed25519PrivateKey.generate()
    root = public_key_b64(root_key)
    async with world_with(settings, root_public_key=root) as world:
        world.root_key = root_key
        investigator = await world.first_investigator()
        operative = await world.invited(investigator, "operative")
        await world.publish_directory(investigator, [investigator])
        before = await _report(world, operative, root, None, "sent under version 1")

        # The same person's new key, enrolled as a new investigator account (the server binds an
        # account to the age recipient it enrolled with), then version 2 lists only the new key.
        renewed = await world.invited(investigator, "investigator")
        v2 = await world.publish_directory(investigator, [renewed])
        assert v2.version == 2
        after = await _report(world, operative, root, 1, "sent under version 2")

        old_identity = str(investigator.age_identity)
        new_identity = str(renewed.age_identity)
        assert await _open(renewed, before, old_identity) == "sent under version 1"
        assert await _open(renewed, after, new_identity) == "sent under version 2"
        # Keys are really separated: the new key cannot open the old report, nor the old key
        # anything sent after it was dropped from the directory.
        with pytest.raises(Exception, match=r"(?i)decrypt|no matching|identity"):
            await _open(renewed, before, new_identity)
        with pytest.raises(Exception, match=r"(?i)decrypt|no matching|identity"):
            await _open(renewed, after, old_identity)
        # A phone that has seen version 2 refuses a replayed version 1 (which names the old key).
        old = sign_directory_with(root_key, 1, [])
        with pytest.raises(DirectoryError, match="older"):
            verify_directory(old, root, 2)


async def test_rotating_the_root_key_accepts_only_the_new_roots_directories(
    settings: Settings,
) -> None:
    old_root = Ed25519PrivateKey.generate()
    new_root = Ed25519PrivateKey.generate()
    async with world_with(settings, root_public_key=public_key_b64(old_root)) as world:
        world.root_key = old_root
        investigator = await world.first_investigator()
        v1 = await world.publish_directory(investigator, [investigator])
        entries = v1.entries
        handle, password, seed = investigator.handle, investigator.password, investigator.seed
        device, account_id = investigator.device, investigator.account_id

    # Step 1 of the runbook: TIPLINE_ROOT_PUBLIC_KEY changes and the service restarts.
    async with world_with(settings, root_public_key=public_key_b64(new_root)) as world:
        same = Actor(world, handle, "investigator")
        same.password, same.seed, same.device, same.account_id = password, seed, device, account_id
        same.client = world.client(device)
        world.clock.advance(600)  # past the TOTP steps spent before the restart
        await same.login()

        by_old_root = sign_directory_with(old_root, 2, entries)
        response = await same.client.call(
            "PUT", "/v1/keys", same.token(), json={"version": 2, **_wire(by_old_root)}
        )
        assert response.status_code in (400, 403, 422), response.text

        by_new_root = sign_directory_with(new_root, 2, entries)
        await publish_directory(same.client, same.token(), by_new_root)
        served = await fetch_directory(same.client, same.token())
        # Clients re-pinned to the new root accept it; a client still pinned to the old root
        # refuses it (so a server cannot quietly switch roots on a phone).
        assert verify_directory(served, public_key_b64(new_root), 1).version == 2
        with pytest.raises(DirectoryError, match="root key"):
            verify_directory(served, public_key_b64(old_root), 1)


def _wire(signed: object) -> dict[str, object]:
    import msgspec

    wire: dict[str, object] = msgspec.to_builtins(signed)
    return wire


async def test_a_lost_phone_is_cut_off_and_the_operative_re_enrols_a_new_one(
    settings: Settings,
) -> None:
    root_key = Ed25519PrivateKey.generate()
    root = public_key_b64(root_key)
    async with world_with(settings, root_public_key=root) as world:
        world.root_key = root_key
        investigator = await world.first_investigator()
        admin = await world.invited(investigator, "admin")
        operative = await world.invited(investigator, "operative")
        await world.publish_directory(investigator, [investigator])
        sent = await _report(world, operative, root, None, "before the phone was lost")
        lost_session = operative.token()

        # Runbook step 1 when the operative cannot act: the admin's reset revokes every device
        # of the account and ends its sessions on every replica at once.
        response = await admin.client.call(
            "POST", f"/v1/accounts/{operative.account_id}/reset", admin.token()
        )
        assert response.status_code == 201, response.text
        code = response.json()["payload"]["code"]
        assert (await operative.client.call("GET", "/v1/me", lost_session)).status_code == 401
        world.next_step()
        stolen = await operative.client.login_response(
            operative.handle, operative.password, operative.totp()
        )
        assert stolen.status_code == 401

        # Step 3: a new phone (new device key, password, TOTP seed) on the same account.
        phone = Actor(world, operative.handle, "operative")
        await phone.enrol(code)
        assert phone.account_id == operative.account_id
        world.next_step()
        await phone.login()
        mine = await phone.client.call("GET", "/v1/reports", phone.token())
        assert mine.status_code == 200
        assert str(sent) in mine.text  # nothing needed re-encrypting
        assert (
            await _open(investigator, sent, str(investigator.age_identity))
            == "before the phone was lost"
        )
        audit = await admin.client.call("GET", "/v1/audit?action=factor.reset", admin.token())
        assert audit.status_code == 200
        assert str(operative.account_id) in audit.text
