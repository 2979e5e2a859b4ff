"""deploy/systemd/: the units keep their sandbox, and `systemd-analyze verify` accepts them
where systemd is installed."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, tool

UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def service_section(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_units_keep_their_sandbox(unit: Path) -> None:
    service = service_section(unit)
    for key, expected in HARDENING.items():
        assert service.get(key) == [expected], f"{unit.name}: {key}"
    assert service["User"] == ["tipline"]
    assert "@system-service" in service["SystemCallFilter"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_secrets_arrive_as_credentials_not_environment(unit: Path) -> None:
    service = service_section(unit)
    credentials = service.get("LoadCredential", [])
    assert credentials
    assert all(c.split(":", 1)[1].startswith("/etc/tipline/credentials/") for c in credentials)
    for assignment in " ".join(service.get("Environment", [])).split():
        name, _, value = assignment.partition("=")
        if name.endswith("_FILE") or name == "PGPASSFILE":
            assert value.startswith("%d/"), assignment


def test_the_service_binds_loopback_behind_the_proxy() -> None:
    service = service_section(DEPLOY / "systemd" / "tipline.service")
    environment = " ".join(service["Environment"])
    assert "TIPLINE_HOST=127.0.0.1" in environment
    assert "TIPLINE_TRUSTED_PROXIES=127.0.0.1" in environment
    assert service["ExecStart"] == ["/opt/tipline/bin/python -m server.cli serve"]
    assert service["ReadWritePaths"] == ["/var/lib/tipline"]


def verify_complaints(units: list[Path]) -> list[str]:
    analyze = tool("systemd-analyze")
    if analyze is None:
        # Part of systemd, not of any package registry: a host without systemd has no unit to
        # run these files anyway. The structural checks above still run there.
        pytest.skip("systemd-analyze is not installed")
    result = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The interpreter is installed on the target host only; any other complaint is a defect.
    return [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/tipline/bin/python is not executable" not in line
    ]


def test_systemd_analyze_accepts_the_units() -> None:
    assert verify_complaints(UNITS) == []


def test_systemd_analyze_catches_a_misspelt_directive(tmp_path: Path) -> None:
    unit = tmp_path / "tipline.service"
    text = (DEPLOY / "systemd" / "tipline.service").read_text(encoding="utf-8")
    unit.write_text(text.replace("NoNewPrivileges=", "NoNewPrivilegez="), encoding="utf-8")
    assert any("NoNewPrivilegez" in line for line in verify_complaints([unit]))


def test_configparser_reads_the_units() -> None:
    # systemd syntax is ini-like; a stray line that is neither key=value nor a section would
    # make configparser (and likely systemd) choke.
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string(unit.read_text(encoding="utf-8"))
        assert parser.has_section("Service")
