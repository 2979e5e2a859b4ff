"""The device key: it proves, on every request, that the caller holds this phone's key.

Written from RFC 9449 / 7515 / 7638 directly (no server code, no JOSE library), so the server's
verifier is tested against a second implementation of the protocol. Only signing is needed
here; the signature primitives are `cryptography`'s.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

KeyKind = Literal["p256", "ed25519"]

DPOP_TYP: Final = "dpop+jwt"
# RFC 9449 §4.2 asks for >= 96 random bits per jti; 256 bits makes a collision unthinkable.
JTI_BYTES: Final = 32
P256_COORDINATE_BYTES: Final = 32


class DeviceKeyError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


class DeviceKeyPair:
    def __init__(self, private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            if not isinstance(private_key.curve, ec.SECP256R1):
                raise DeviceKeyError("only P-256 EC device keys are supported")
        elif not isinstance(private_key, ed25519.Ed25519PrivateKey):
            raise DeviceKeyError("only P-256 and Ed25519 device keys are supported")
        self._private_key = private_key

    def __repr__(self) -> str:
        return f"DeviceKeyPair({self.alg}, thumbprint={self.thumbprint()})"

    @classmethod
    def generate(cls, kind: KeyKind = "p256") -> DeviceKeyPair:
        # P-256 by default: the curve phones' secure hardware (Secure Enclave, StrongBox) holds.
        if kind == "p256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        return cls(ed25519.Ed25519PrivateKey.generate())

    @property
    def alg(self) -> str:
        return "ES256" if isinstance(self._private_key, ec.EllipticCurvePrivateKey) else "EdDSA"

    def public_key(self) -> ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey:
        return self._private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        if isinstance(self._private_key, ec.EllipticCurvePrivateKey):
            numbers = self._private_key.public_key().public_numbers()
            # RFC 7518 §6.2.1.2: coordinates are full-length, leading zeros kept.
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(P256_COORDINATE_BYTES, "big")),
                "y": b64url(numbers.y.to_bytes(P256_COORDINATE_BYTES, "big")),
            }
        raw = self._private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}  # RFC 8037 §2

    def thumbprint(self) -> str:
        # RFC 7638 §3: the required members (here: all of them), sorted, no whitespace.
        return b64url(hashlib.sha256(_json(self.public_jwk())).digest())

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._private_key, ec.EllipticCurvePrivateKey):
            der = self._private_key.sign(message, ec.ECDSA(hashes.SHA256()))
            # RFC 7518 §3.4: a JWS carries R || S, each 32 bytes, not the DER that OpenSSL emits.
            r, s = decode_dss_signature(der)
            return r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(
                P256_COORDINATE_BYTES, "big"
            )
        return self._private_key.sign(message)

    def to_pem(self) -> bytes:
        # Unencrypted PKCS#8: it only ever lives inside the age-encrypted profile.
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, pem: bytes) -> DeviceKeyPair:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise DeviceKeyError("not a PKCS#8 PEM private key") from error
        if not isinstance(key, (ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
            raise DeviceKeyError("only P-256 and Ed25519 device keys are supported")
        return cls(key)


def htu_for(url: str) -> str:
    # RFC 9449 §4.2: htu is the target URI "without query and fragment parts".
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


def ath_for(access_token: str) -> str:
    # RFC 9449 §4.2: base64url(SHA-256(ASCII(token))), binding the proof to this token.
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def make_proof(
    key: DeviceKeyPair,
    method: str,
    url: str,
    access_token: str | None = None,
    now: float | None = None,
) -> str:
    header = {"typ": DPOP_TYP, "alg": key.alg, "jwk": key.public_jwk()}
    claims: dict[str, object] = {
        "jti": b64url(secrets.token_bytes(JTI_BYTES)),
        "htm": method,
        "htu": htu_for(url),
        "iat": int(time.time() if now is None else now),
    }
    if access_token is not None:
        claims["ath"] = ath_for(access_token)
    # RFC 7515 §7.1: BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature).
    signing_input = f"{b64url(_json(header))}.{b64url(_json(claims))}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"
