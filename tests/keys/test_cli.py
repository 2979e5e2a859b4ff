"""`tipline-client keys`: the offline half (root key, signing) works from files and the terminal."""

from __future__ import annotations

import argparse
import io
import stat
import uuid
from pathlib import Path

import msgspec
import pytest

from clients.reference_client import keys, keys_cli
from clients.reference_client.device import DeviceKeyPair

PASSPHRASE = "correct horse battery staple"


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    keys_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_init_root_then_sign_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root.age"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSPHRASE}\n{PASSPHRASE}\n"))
    assert keys_cli.run(parse(["keys", "init-root", "--out", str(root)])) == 0
    printed = capsys.readouterr().out
    public = printed.split("TIPLINE_ROOT_PUBLIC_KEY=", 1)[1].split()[0]
    assert keys.root_fingerprint(public) in printed
    assert stat.S_IMODE(root.stat().st_mode) == 0o600
    assert PASSPHRASE not in printed

    entry = keys.DirectoryEntry(
        account_id=uuid.uuid4(),
        age_recipient="age1" + "q" * 58,
        device_keys=[DeviceKeyPair.generate().public_jwk()],
        role="investigator",
    )
    entries = tmp_path / "entries.json"
    entries.write_bytes(msgspec.json.encode([entry]))
    out = tmp_path / "directory.json"
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSPHRASE}\n"))
    argv = ["keys", "sign-directory", "--root", str(root), "--version", "3"]
    argv += ["--entries", str(entries), "--out", str(out)]
    assert keys_cli.run(parse(argv)) == 0
    signed = msgspec.json.decode(out.read_bytes(), type=keys.SignedDirectory)
    directory = keys.verify_directory(signed, public, last_seen_version=2)
    assert directory.version == 3
    assert directory.entries == [entry]


def test_a_wrong_root_passphrase_signs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root.age"
    keys.init_root(root, PASSPHRASE)
    entries = tmp_path / "entries.json"
    entries.write_bytes(b"[]")
    out = tmp_path / "directory.json"
    monkeypatch.setattr("sys.stdin", io.StringIO("not the passphrase\n"))
    argv = ["keys", "sign-directory", "--root", str(root), "--version", "1"]
    argv += ["--entries", str(entries), "--out", str(out)]
    assert keys_cli.run(parse(argv)) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    assert not out.exists()
