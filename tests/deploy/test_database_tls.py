"""The database URLs in deploy/k8s/ really make asyncpg insist on TLS: given the manifests' own
query string, asyncpg asks the server for TLS first and, when a server (or someone posing as
it) declines, gives up instead of carrying on in clear. With `sslmode=prefer` the same fake
server gets a plaintext start-up message, which shows the check can tell the difference."""

from __future__ import annotations

import asyncio
import datetime
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.deploy.test_kubernetes import database_urls

SSL_REQUEST = struct.pack("!ii", 8, 80877103)  # PostgreSQL's SSLRequest message


def ca_certificate(folder: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "ca.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


async def first_messages(url: str) -> list[bytes]:
    """Connect asyncpg to a server that declines TLS; return what the client sent it."""
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            received.append(await reader.readexactly(8))
            writer.write(b"N")  # "no TLS here"
            await writer.drain()
            received.append(await asyncio.wait_for(reader.read(4096), timeout=2))
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    parts = urlsplit(url)
    local = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    try:
        async with server:
            with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
                await asyncpg.connect(local, password="unused", timeout=5)
    finally:
        server.close()
    return [message for message in received if message]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize(
    "url", sorted({url for _, _, _, url in database_urls()}), ids=lambda u: urlsplit(u).username
)
async def test_asyncpg_never_falls_back_to_plaintext(url: str, tmp_path: Path) -> None:
    ca = ca_certificate(tmp_path)
    sent = await first_messages(with_query(url, sslrootcert=str(ca)))
    assert sent == [SSL_REQUEST]


async def test_a_preferring_client_would_fall_back(tmp_path: Path) -> None:
    url = database_urls()[0][3]
    sent = await first_messages(with_query(url, sslmode="prefer", sslrootcert=""))
    assert sent[0] == SSL_REQUEST
    # The start-up message names the user in clear: exactly what verify-full prevents.
    assert len(sent) == 2
    assert b"user\x00tipline_app\x00" in sent[1]


async def test_a_missing_root_certificate_stops_the_connection() -> None:
    url = database_urls()[0][3]
    with pytest.raises((OSError, asyncpg.ClientConfigurationError)):
        await asyncpg.connect(with_query(url, sslrootcert="/nonexistent/ca.crt"), timeout=5)
