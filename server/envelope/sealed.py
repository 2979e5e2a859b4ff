"""The one check every sealed, signed submission (report or message) goes through."""

from __future__ import annotations

from collections.abc import Mapping

from server.envelope.age_header import check_age_ciphertext
from server.envelope.signatures import verify_device_signature
from server.errors import InvalidInput


def check_sealed(
    ciphertext: bytes,
    *,
    readers: int,
    max_recipients: int,
    max_bytes: int,
    signed_bytes: bytes,
    device_key: Mapping[str, str],
    signature: str,
) -> None:
    """Raises InvalidInput unless the ciphertext is a well-formed age file for exactly `readers`
    recipients and the device signed exactly `signed_bytes`.

    The server cannot see who the recipients are, only how many; the count still catches a
    phone that left someone out (or added someone) of the people who must be able to read.
    """
    form = check_age_ciphertext(ciphertext, max_recipients=max_recipients, max_bytes=max_bytes)
    if form.recipients != readers:
        raise InvalidInput("The ciphertext must be encrypted to exactly its readers")
    verify_device_signature(device_key, signed_bytes, signature)
