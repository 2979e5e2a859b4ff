"""deploy/compose.yaml: valid against the Compose Specification's JSON schema (the copy
check-jsonschema vendors), and every service keeps the properties the deployment relies on."""

from __future__ import annotations

import copy
import re
from importlib import resources
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # ships no type information
import msgspec
import pytest

from tests.deploy.conftest import DEPLOY, load_yaml

COMPOSE = DEPLOY / "compose.yaml"


def compose_schema() -> dict[str, Any]:
    # check-jsonschema vendors the compose-spec schema (vendor.compose-spec) with its digest.
    source = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema: dict[str, Any] = msgspec.json.decode(source.read_bytes())
    return schema


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(compose_schema())
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE)
    return document


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_a_broken_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["app"]["restart"] = ["always"]
    broken["services"]["db"]["healthcheck"]["interval"] = {"seconds": 10}
    assert len(schema_errors(broken)) >= 2


def test_proxy_app_and_postgres_are_all_there(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"proxy", "app", "db", "migrate"} <= set(services)
    assert services["app"]["command"] == ["serve"]
    assert services["migrate"]["command"] == ["migrate"]
    # PostgreSQL is a real service with a health check the app waits for.
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["proxy"]["depends_on"]["app"]["condition"] == "service_healthy"
    assert services["proxy"]["volumes"][0].startswith("./Caddyfile:/etc/caddy/Caddyfile:ro")


def test_the_app_runs_unprivileged_and_read_only(compose: dict[str, Any]) -> None:
    for name in ("app", "migrate"):
        service = compose["services"][name]
        uid = service["user"].split(":")[0]
        assert uid.isdigit(), name
        assert int(uid) != 0, name
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "cap_add" not in service, name
    for name, service in compose["services"].items():
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged", False), name


def test_only_the_proxy_is_reachable_from_outside(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    networks = compose["networks"]
    assert networks["edge"]["internal"] is True
    assert networks["backend"]["internal"] is True
    assert "backend" not in services["proxy"]["networks"]
    assert services["db"]["networks"] == ["backend"]


def test_forwarded_headers_are_trusted_from_the_proxy_alone(compose: dict[str, Any]) -> None:
    proxy_address = compose["services"]["proxy"]["networks"]["edge"]["ipv4_address"]
    environment = compose["services"]["app"]["environment"]
    assert environment["TIPLINE_TRUSTED_PROXIES"] == proxy_address


def test_secrets_are_files_never_values(compose: dict[str, Any]) -> None:
    for name, secret in compose["secrets"].items():
        assert set(secret) == {"file"}, name
        assert secret["file"].startswith("${TIPLINE_SECRETS_DIR:?"), name
    app = compose["services"]["app"]
    mounted = {s if isinstance(s, str) else s["source"] for s in app["secrets"]}
    assert mounted == {"tipline_app_pgpass", "tipline_secret_key", "tipline_metrics_token"}
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            assert not re.search(r"(PASSWORD|SECRET|TOKEN)$", key) or key.endswith("_FILE"), (
                f"{name}: {key} holds a secret inline"
            )
            # A URL may name a user, never a password.
            assert not re.search(r"://[^/@:]+:[^/@]+@", text), f"{name}: {key}"
        assert "env_file" not in service or all(
            not str(f).startswith(".") for f in service["env_file"]
        ), name
    assert compose["services"]["db"]["environment"]["POSTGRES_PASSWORD_FILE"].startswith(
        "/run/secrets/"
    )


def test_evidence_and_database_live_on_the_operator_s_encrypted_folders(
    compose: dict[str, Any],
) -> None:
    volumes = compose["volumes"]
    assert "TIPLINE_EVIDENCE_HOST_DIR" in volumes["evidence"]["driver_opts"]["device"]
    assert "TIPLINE_PGDATA_DIR" in volumes["pgdata"]["driver_opts"]["device"]
    app = compose["services"]["app"]
    assert "evidence:/var/lib/tipline/evidence" in app["volumes"]
    assert app["environment"]["TIPLINE_EVIDENCE_DIR"] == "/var/lib/tipline/evidence"


def test_no_secret_pretends_compose_sets_its_owner_or_mode(compose: dict[str, Any]) -> None:
    # Outside swarm mode Compose bind-mounts a file secret unchanged and silently ignores uid,
    # gid and mode: the host file's owner and mode are what the container sees.
    for name, service in compose["services"].items():
        for secret in service.get("secrets", []):
            if isinstance(secret, dict):
                assert not {"uid", "gid", "mode"} & set(secret), f"{name}: {secret['source']}"


def test_the_plaintext_database_link_never_leaves_the_host(compose: dict[str, Any]) -> None:
    # No TLS to PostgreSQL here (deploy/compose.yaml says why): that is only sound while the
    # database is reachable on an internal network shared with the app and migrate alone.
    services = compose["services"]
    assert compose["networks"]["backend"]["internal"] is True
    on_backend = {name for name, s in services.items() if "backend" in s.get("networks", [])}
    assert on_backend == {"app", "migrate", "db"}
    assert not services["db"].get("ports")
    for name in ("app", "migrate"):
        assert "@db:5432/" in services[name]["environment"]["DATABASE_URL"], name
