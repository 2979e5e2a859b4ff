"""TIPLINE_TRUSTED_PROXIES takes networks as well as addresses (Kubernetes: the pod network), yet
only the last X-Forwarded-For entry, appended by a trusted proxy, ever names the client; a value
that is malformed or would trust nearly everyone stops start-up."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.connection import ASGIConnection

from clients.reference_client.device import DeviceKeyPair
from server.identity.guards import client_address
from server.settings import Settings, SettingsError, load_settings
from tests.conftest import world_with

VARIABLE = "TIPLINE_TRUSTED_PROXIES"


def connection(peer: str, *forwarded: str) -> ASGIConnection[Any, Any, Any, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/v1/sessions",
        "client": (peer, 40_000),
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }
    return ASGIConnection(scope)  # type: ignore[arg-type]  # a plain dict is a valid scope


def proxies(value: str) -> Settings:
    return load_settings({VARIABLE: value})


def test_a_peer_inside_a_trusted_network_is_believed_for_its_last_entry_only() -> None:
    settings = proxies("10.244.0.0/16, 192.0.2.7")
    # The client's own entries come first; the proxy appended the real peer last.
    request = connection("10.244.3.17", "198.51.100.1, 203.0.113.9", "203.0.113.50")
    assert client_address(request, settings) == "203.0.113.50"
    # A single address still works as before.
    assert client_address(connection("192.0.2.7", "203.0.113.51"), settings) == "203.0.113.51"


def test_a_peer_outside_every_trusted_network_is_its_own_address() -> None:
    settings = proxies("10.244.0.0/16")
    for peer in ("10.245.0.1", "10.243.255.255", "203.0.113.9", "fd00::1"):
        assert client_address(connection(peer, "198.51.100.1"), settings) == peer


def test_an_ipv4_mapped_peer_matches_its_ipv4_network() -> None:
    settings = proxies("10.244.0.0/16")
    mapped = connection("::ffff:10.244.1.2", "203.0.113.50")
    assert client_address(mapped, settings) == "203.0.113.50"
    assert settings.is_trusted_proxy("::ffff:10.245.1.2") is False


def test_a_trusted_proxy_with_a_malformed_last_entry_counts_as_itself() -> None:
    settings = proxies("10.244.0.0/16")
    assert client_address(connection("10.244.0.9", "203.0.113.5, junk"), settings) == "10.244.0.9"
    assert client_address(connection("10.244.0.9"), settings) == "10.244.0.9"


def test_an_ipv6_network_is_accepted() -> None:
    settings = proxies("fd00:10:244::/56")
    assert client_address(connection("fd00:10:244:0:1::5", "2001:db8::7"), settings) == (
        "2001:db8::7"
    )
    assert settings.is_trusted_proxy("fd00:10:245::1") is False


@pytest.mark.parametrize(
    "value",
    [
        "0.0.0.0/0",  # everyone
        "::/0",
        "10.0.0.0/7",  # broader than /8
        "2001:db8::/31",  # broader than /32
        "10.244.0.1/16",  # host bits set: an address or the wrong mask, never guessed at
        "10.244.0.0/33",
        "10.244.0.0/16, not-an-address",
        "10.244.0.0/16;10.245.0.0/16",
        "proxy.internal",
    ],
)
def test_a_malformed_or_too_broad_value_stops_start_up(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        proxies(value)
    message = str(raised.value)
    assert message.startswith(f"{VARIABLE}: ")
    assert value not in message


@pytest.mark.parametrize("value", ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1", "::1"])
def test_the_broadest_allowed_networks_load(value: str) -> None:
    assert len(proxies(value).trusted_proxy_networks) == 1


async def test_clients_behind_a_trusted_network_are_throttled_apart(settings: Settings) -> None:
    # Over real HTTP: the live server's peer is 127.0.0.1, inside the trusted 127.0.0.0/8.
    async with world_with(
        settings,
        source_attempts_per_window=2,
        source_window_s=86_400,
        trusted_proxies="127.0.0.0/8",
    ) as world:
        client = world.client(DeviceKeyPair.generate())

        async def attempt(handle: str, forwarded: str) -> int:
            response = await client._http.post(
                "/v1/sessions",
                json={"handle": handle, "password": "x" * 20, "totp_code": "123456"},
                headers={
                    "DPoP": client.proof("POST", "/v1/sessions"),
                    # A client-chosen first entry, then what the proxy appended.
                    "X-Forwarded-For": f"198.51.100.77, {forwarded}",
                },
            )
            return response.status_code

        # Fresh handles, so only the per-source limit can refuse.
        assert [await attempt(f"someone-a{i}", "203.0.113.7") for i in range(3)] == [401, 401, 429]
        # One attacker's exhausted allowance does not lock out another client, although both
        # share the proxy and the same client-chosen first entry.
        assert await attempt("someone-b0", "203.0.113.8") == 401
