"""/metrics: what a Prometheus scrape sees after real logins and reports, that it names nobody,
and that it needs its own token."""

from __future__ import annotations

import hmac
import re
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.reference_client.reports import TipReport, seal_report, submit
from server.app import create_app
from server.metrics import service
from server.settings import Settings, SettingsError
from tests.conftest import TestDatabase, world_with
from tests.metrics.conftest import Scrape

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


async def get_metrics(base_url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await client.get("/metrics", headers=headers or {})


async def scalar(database: TestDatabase, sql: str) -> int:
    conn = await asyncpg.connect(database.admin_url)
    try:
        result: int = await conn.fetchval(sql)
    finally:
        await conn.close()
    return result


async def test_a_scrape_counts_real_traffic_and_names_nobody(
    scrape: Scrape, database: TestDatabase, settings: Settings
) -> None:
    desk = scrape.desk
    world, operative, investigator = desk.world, desk.operative, desk.investigator
    assert world.directory is not None
    # Two refused logins (wrong password) by a real handle.
    for _ in range(2):
        refused = await desk.other_operative.client.login_response(
            desk.other_operative.handle, "not the password at all", desk.other_operative.totp()
        )
        assert refused.status_code == 401
    receipts = []
    for text in ("first tip", "second tip"):
        submission = seal_report(operative.device, world.directory, TipReport(text=text))
        receipts.append(
            (submission.report_id, await submit(operative.client, operative.token(), submission))
        )
    report_id = receipts[0][0]
    detail = await investigator.client.call("GET", f"/v1/reports/{report_id}", investigator.token())
    assert detail.status_code == 200
    # A junk method and a path that carries a handle must not become label values.
    async with httpx.AsyncClient(base_url=world.base_url) as raw:
        await raw.request("FROBNICATE", f"/v1/accounts/{operative.handle}")

    response = await get_metrics(world.base_url, {"Authorization": f"Bearer {scrape.token}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    found = samples(text)

    assert value(found, "tipline_reports_queue_depth") == 2
    assert value(found, "tipline_login_failures_total", outcome="failed") == 2
    assert value(found, "tipline_login_failures_total", outcome="throttled") == 0
    post_reports = {"method": "POST", "route": "/v1/reports"}
    assert value(found, "tipline_http_requests_total", status="201", **post_reports) == 2
    assert value(found, "tipline_http_request_duration_seconds_count", **post_reports) == 2
    detail_route = {"method": "GET", "route": "/v1/reports/{report_id}"}
    assert value(found, "tipline_http_requests_total", status="200", **detail_route) == 1
    assert (
        value(
            found, "tipline_http_requests_total", status="401", method="POST", route="/v1/sessions"
        )
        == 2
    )
    assert (
        value(
            found, "tipline_http_requests_total", method="other", route="<unmatched>", status="404"
        )
        == 1
    )
    assert value(found, "tipline_db_pool_connections", state="max") == settings.db_pool_max_size
    open_connections = value(found, "tipline_db_pool_connections", state="open")
    assert settings.db_pool_min_size <= open_connections <= settings.db_pool_max_size
    assert 0 <= value(found, "tipline_db_pool_connections", state="in_use") <= open_connections
    assert value(found, "tipline_db_up") == 1
    unsealed = await scalar(
        database,
        "SELECT count(*) FROM tipline.audit_events e WHERE NOT EXISTS "
        "(SELECT FROM tipline.audit_chain c WHERE c.event_id = e.id)",
    )
    assert unsealed > 0
    assert value(found, "tipline_audit_unsealed_events") == unsealed
    assert value(found, "tipline_audit_seal_lag_seconds") > 0

    people = [investigator, operative, desk.other_operative]
    forbidden = ["127.0.0.1", "FROBNICATE", str(report_id), receipts[1][0].hex]
    for person in people:
        assert person.account_id is not None
        assert person.session is not None
        forbidden += [person.handle, str(person.account_id), person.account_id.hex]
        forbidden += [str(person.session.device_id), person.session.device_id.hex]
    leaked = [item for item in forbidden if item.lower() in text.lower()]
    assert leaked == []
    # Every route label is a template the app declares, never a path a client sent.
    templates = {re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path) for route in world.app.routes}
    routes = {dict(labels)["route"] for (_, labels) in found if "route" in dict(labels)}
    assert routes <= templates | {"<unmatched>"}
    assert "/v1/reports/{report_id}" in routes


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer wrong-token-wrong-token-wrong-token-00",
        "Basic dG9rZW46dG9rZW4=",
    ],
)
async def test_a_scrape_without_the_token_is_refused(scrape: Scrape, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await get_metrics(scrape.desk.world.base_url, headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "tipline_" not in response.text


async def test_a_token_prefix_or_extension_is_refused(scrape: Scrape) -> None:
    base = scrape.desk.world.base_url
    for wrong in (scrape.token[:-1], scrape.token + "0", scrape.token.upper()):
        response = await get_metrics(base, {"Authorization": f"Bearer {wrong}"})
        assert response.status_code == 401, wrong
    ok = await get_metrics(base, {"Authorization": f"bearer {scrape.token}"})
    assert ok.status_code == 200


async def test_without_a_configured_token_the_route_does_not_exist(settings: Settings) -> None:
    async with world_with(settings, metrics_token_file=None) as world:
        response = await get_metrics(world.base_url, {"Authorization": "Bearer anything"})
    assert response.status_code == 404


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert service.token_matches(b"x" * 40, b"x" * 40)
    assert not service.token_matches(b"x" * 40, b"x" * 39)
    # Both sides are fixed-length digests, so not even the length is compared early.
    assert len(calls) == 2
    assert all(len(a) == len(b) == 32 for a, b in calls)


def test_a_short_or_missing_token_file_stops_start_up(settings: Settings, tmp_path: Path) -> None:
    short = tmp_path / "short.token"
    short.write_text("too-short")
    for path in (short, tmp_path / "absent.token"):
        configured = msgspec.structs.replace(settings, metrics_token_file=path)
        with pytest.raises(SettingsError, match="TIPLINE_METRICS_TOKEN_FILE"):
            create_app(configured)
