"""The root key setting is checked before it is trusted with anything."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clients.reference_client.keys import public_key_b64
from server.errors import ServiceUnavailable
from server.keys.service import root_public_key

# The identity point (y = 1): a small-order key, under which signatures can be forged without
# any private key. OpenSSL loads it without complaint.
SMALL_ORDER = base64.b64encode(bytes([1]) + bytes(31)).decode()


@pytest.mark.parametrize(
    ("configured", "detail"),
    [
        (None, "no organisation root key is configured"),
        ("not base64!", "misconfigured"),
        (base64.b64encode(bytes(31)).decode(), "misconfigured"),
        (SMALL_ORDER, "misconfigured"),
    ],
)
def test_a_missing_or_bad_root_key_is_unavailable_not_trusted(
    configured: str | None, detail: str
) -> None:
    with pytest.raises(ServiceUnavailable, match=detail):
        root_public_key(configured)


def test_a_real_root_key_loads() -> None:
    key = Ed25519PrivateKey.generate()
    loaded = root_public_key(public_key_b64(key))
    loaded.verify(key.sign(b"m"), b"m")
