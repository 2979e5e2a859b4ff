"""DPoP (RFC 9449) proof verification and device-key (JWK) validation.

Pure: bytes and clocks in, a Struct or a domain error out. Replay protection (each `jti` used
once) needs shared state, so the caller records `DPoPClaims.jti` in PostgreSQL.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import string
from typing import Annotated, Any, Final
from urllib.parse import urlsplit

import jwt
import msgspec
import nacl.bindings

from server.errors import InvalidInput, Unauthenticated

DPOP_TYP: Final = "dpop+jwt"
ALG_ES256: Final = "ES256"
ALG_EDDSA: Final = "EdDSA"
# RFC 9449 §4.2/§4.3 item 5: asymmetric only, never `none` or a MAC. We accept exactly the two
# algorithms of the keys we let devices register (DESIGN.md §3), nothing negotiable.
ALLOWED_ALGS: Final = frozenset({ALG_ES256, ALG_EDDSA})
# (kty, crv) -> the only alg that key may sign with: pinning the alg to the key type closes
# algorithm-confusion attacks where the header alg picks how the key is interpreted.
ALG_FOR_KEY: Final[dict[tuple[str, str], str]] = {
    ("EC", "P-256"): ALG_ES256,
    ("OKP", "Ed25519"): ALG_EDDSA,
}
# RFC 7638 §3.2: the members hashed into a thumbprint, per key type.
THUMBPRINT_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
# Private or symmetric key members from RFC 7518 §6.2.2, §6.3.2, §6.4.1 and RFC 8037 §2. A
# client that sends one has leaked its secret; say so rather than a vague "unexpected member".
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
OPTIONAL_JWK_MEMBERS: Final = frozenset({"alg", "use", "kid"})
COORDINATE_BYTES: Final = 32  # P-256 coordinates and Ed25519 keys (RFC 7518 §6.2.1.2, 8037 §2)
MAX_KID_LENGTH: Final = 128

# Bounded before any base64 or JSON work so a hostile header cannot buy CPU or memory.
MAX_PROOF_BYTES: Final = 8 * 1024
# RFC 9449 §4.2 asks for >= 96 random bits in a jti; 16 characters is the least that can carry
# them, 128 caps what the replay table stores.
JTI_MIN_LENGTH: Final = 16
JTI_MAX_LENGTH: Final = 128
MAX_HTU_LENGTH: Final = 2048
MAX_HTM_LENGTH: Final = 16
# base64url of a SHA-256 digest is 43 characters; a little slack keeps the error generic.
MAX_ATH_LENGTH: Final = 64

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
# RFC 3986 §2: the characters a URI may contain at all; anything else (spaces, controls,
# backslashes, non-ASCII) is refused rather than "cleaned up" by urlsplit.
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_PERCENT_ENCODED = re.compile(r"%(..)?", re.DOTALL)
_HEX = frozenset(string.hexdigits)
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

JtiStr = Annotated[
    str,
    msgspec.Meta(min_length=JTI_MIN_LENGTH, max_length=JTI_MAX_LENGTH, pattern=r"^[!-~]+$"),
]
HtmStr = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HTM_LENGTH)]
HtuStr = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HTU_LENGTH)]
AthStr = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ATH_LENGTH)]


class InvalidDeviceKey(InvalidInput):
    title = "The device key is not acceptable"


# RFC 9449 §7.1: the challenge a 401 carries, naming the scheme and the algorithms accepted.
DPOP_CHALLENGE: Final = {"WWW-Authenticate": f'DPoP algs="{" ".join(sorted(ALLOWED_ALGS))}"'}


class InvalidProof(Unauthenticated):
    """Every DPoP failure looks the same to the client (no oracle for forging proofs).

    `reason` is a fixed internal tag for logs and tests; it never contains input.
    """

    title = "Invalid DPoP proof"

    def __init__(self, reason: str) -> None:
        # RFC 9449 §7.1: tell the client which scheme and algorithms we accept.
        super().__init__(
            "Invalid DPoP proof",
            headers={
                "WWW-Authenticate": (
                    f'DPoP error="invalid_dpop_proof", algs="{" ".join(sorted(ALLOWED_ALGS))}"'
                )
            },
        )
        self.reason = reason


class DeviceKey(msgspec.Struct, frozen=True):
    # Only the RFC 7638 required members: what we store and what the thumbprint covers.
    jwk: dict[str, str]
    thumbprint: str

    @property
    def alg(self) -> str:
        return ALG_FOR_KEY[(self.jwk["kty"], self.jwk["crv"])]


class DPoPClaims(msgspec.Struct, frozen=True):
    jti: str
    htm: str
    htu: str
    iat: float
    ath: str | None
    thumbprint: str
    # The proof's public key (RFC 7638 members only): the session's device key once the
    # session check has matched its thumbprint.
    jwk: dict[str, str]


class _ProofClaims(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # RFC 9449 §4.2. `nonce` is not accepted: this server issues none (§8), so a proof that
    # carries one was not made for us.
    jti: JtiStr
    htm: HtmStr
    htu: HtuStr
    iat: float
    ath: AthStr | None = None


_JWS = jwt.PyJWS(algorithms=sorted(ALLOWED_ALGS))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode_canonical(value: str) -> bytes:
    # RFC 7515 §2: base64url without padding. Re-encoding must give the same text, so one key
    # has exactly one JWK spelling and therefore exactly one thumbprint.
    if not _B64URL.fullmatch(value):
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error
    if _b64url(raw) != value:
        raise ValueError("not canonical base64url")
    return raw


def jwk_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace."""
    members = THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps(
        {name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True
    )
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def parse_device_jwk(jwk: object) -> DeviceKey:
    if not isinstance(jwk, dict) or not all(isinstance(name, str) for name in jwk):
        raise InvalidDeviceKey("The device key must be a JWK object")
    # RFC 9449 §4.3 item 7: a proof key must not carry private material; neither may a
    # registered key, since the server must never hold a device secret.
    if PRIVATE_MEMBERS & jwk.keys():
        raise InvalidDeviceKey("The device key must be a public key; it contains private material")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not isinstance(kty, str) or not isinstance(crv, str) or (kty, crv) not in ALG_FOR_KEY:
        raise InvalidDeviceKey("Only EC P-256 and OKP Ed25519 public keys are accepted")
    required = THUMBPRINT_MEMBERS[kty]
    if not set(required) <= jwk.keys():
        raise InvalidDeviceKey("The device key is missing a required member")
    if jwk.keys() - set(required) - OPTIONAL_JWK_MEMBERS:
        raise InvalidDeviceKey("The device key has unexpected members")
    if "alg" in jwk and jwk["alg"] != ALG_FOR_KEY[(kty, crv)]:
        raise InvalidDeviceKey("The device key's alg does not match its key type")
    if "use" in jwk and jwk["use"] != "sig":
        raise InvalidDeviceKey("The device key's use must be sig")
    if "kid" in jwk and not (isinstance(jwk["kid"], str) and len(jwk["kid"]) <= MAX_KID_LENGTH):
        raise InvalidDeviceKey("The device key's kid is malformed")

    public = {name: jwk[name] for name in required}
    for name in ("x", "y"):
        if name not in public:
            continue
        value = public[name]
        if not isinstance(value, str):
            raise InvalidDeviceKey(f"The device key's {name} must be a string")
        try:
            raw = _b64url_decode_canonical(value)
        except ValueError:
            raise InvalidDeviceKey(f"The device key's {name} is not base64url") from None
        if len(raw) != COORDINATE_BYTES:
            raise InvalidDeviceKey(f"The device key's {name} has the wrong length")
        if kty == "OKP" and not nacl.bindings.crypto_core_ed25519_is_valid_point(raw):
            # OpenSSL loads any 32 bytes as an Ed25519 key; libsodium rejects encodings that
            # are off the curve, non-canonical or of small order. A small-order key lets one
            # signature verify for many messages, which would break report custody.
            raise InvalidDeviceKey("The device key is not a valid Ed25519 point")
    try:
        # PyJWT builds the key object; for P-256 cryptography refuses a point off the curve.
        jwt.PyJWK(dict(public), algorithm=ALG_FOR_KEY[(kty, crv)])
    except jwt.PyJWTError:
        raise InvalidDeviceKey("The device key is not a valid point on its curve") from None
    return DeviceKey(jwk=public, thumbprint=jwk_thumbprint(public))


# Validating a JWK and building its key object costs more than verifying a signature with it,
# and a device sends the same key with every request. Keyed by the exact input, so a cached
# answer is the one parse_device_jwk would give; failures are not cached.
_KEY_CACHE_SIZE: Final = 1024
_JWK_MAX_MEMBERS: Final = 8


def load_device_key(jwk: object) -> tuple[DeviceKey, jwt.PyJWK]:
    """The validated device key and its verifier; raises InvalidDeviceKey."""
    if (
        isinstance(jwk, dict)
        and len(jwk) <= _JWK_MAX_MEMBERS
        and all(isinstance(k, str) and isinstance(v, str) for k, v in jwk.items())
    ):
        return _load_cached(tuple(sorted(jwk.items())))
    return _load(jwk)


@functools.lru_cache(maxsize=_KEY_CACHE_SIZE)
def _load_cached(members: tuple[tuple[str, str], ...]) -> tuple[DeviceKey, jwt.PyJWK]:
    return _load(dict(members))


def _load(jwk: object) -> tuple[DeviceKey, jwt.PyJWK]:
    device_key = parse_device_jwk(jwk)
    return device_key, jwt.PyJWK(dict(device_key.jwk), algorithm=device_key.alg)


def _normalise_percent_encoding(component: str) -> str:
    # RFC 3986 §6.2.2.1 (hex digits upper case) and §6.2.2.2 (decode unreserved characters).
    def replace(match: re.Match[str]) -> str:
        digits = match.group(1)
        if digits is None or not set(digits) <= _HEX:
            raise ValueError("bad percent-encoding")
        char = chr(int(digits, 16))
        return char if char in _UNRESERVED else "%" + digits.upper()

    return _PERCENT_ENCODED.sub(replace, component)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 §5.2.4 / §6.2.2.3, for the absolute paths an http(s) URI with authority has.
    segments = path.split("/")[1:]
    output: list[str] = []
    for segment in segments:
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    if segments and segments[-1] in (".", ".."):
        output.append("")
    return "/" + "/".join(output)


def normalise_htu(uri: str) -> str:
    """The http(s) URI without query and fragment, normalised per RFC 3986 §6.2.2 and §6.2.3.

    RFC 9449 §4.3 item 9 compares `htu` "ignoring any query and fragment parts" and asks for
    syntax- and scheme-based normalisation first, so equivalent spellings of one URL match.
    """
    if len(uri) > MAX_HTU_LENGTH or not _URI_CHARS.fullmatch(uri):
        raise ValueError("not a URI")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http(s) URI")
    # RFC 9110 §4.2.4: userinfo is deprecated in http(s) URIs and a classic phishing device.
    if "@" in parts.netloc:
        raise ValueError("userinfo in URI")
    host = parts.hostname  # lower-cased by urlsplit (RFC 3986 §6.2.2.1)
    # DNS names and IP literals never need percent-encoding; refusing it keeps one spelling.
    if not host or "%" in host:
        raise ValueError("no usable host")
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # raises ValueError on a malformed port
    authority = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalise_percent_encoding(parts.path or "/"))
    return f"{scheme}://{authority}{path}"


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII(token)))."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def _verified_parts(proof: str) -> tuple[DeviceKey, bytes]:
    try:
        header: dict[str, Any] = _JWS.get_unverified_header(proof)
    except jwt.PyJWTError:
        raise InvalidProof("header") from None
    if header.get("typ") != DPOP_TYP:  # RFC 9449 §4.3 item 4
        raise InvalidProof("typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:  # §4.3 item 5
        raise InvalidProof("alg")
    # We implement no JWS extensions (RFC 7515 §4.1.11), and `b64` would detach the payload.
    if "crit" in header or "b64" in header:
        raise InvalidProof("crit")
    try:
        device_key, key = load_device_key(header.get("jwk"))  # §4.3 items 6 and 7
    except InvalidDeviceKey:
        raise InvalidProof("jwk") from None
    except jwt.PyJWTError:
        raise InvalidProof("jwk") from None
    if alg != device_key.alg:
        raise InvalidProof("alg-key-mismatch")
    try:
        decoded = _JWS.decode_complete(proof, key=key, algorithms=[alg])
    except jwt.PyJWTError:
        raise InvalidProof("signature") from None
    payload = decoded["payload"]
    if not isinstance(payload, bytes):
        raise InvalidProof("payload")
    return device_key, payload


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    max_age_s: float,
    max_future_s: float,
    access_token: str | None,
    expected_thumbprint: str | None,
) -> DPoPClaims:
    """Check a DPoP proof per RFC 9449 §4.3, except `jti` replay, which the caller records.

    `url` is the request's target URI as the client addressed it (public scheme and host).
    """
    # §4.3 item 2: one well-formed compact JWS, bounded in size before anything is decoded.
    if not isinstance(proof, str) or len(proof) > MAX_PROOF_BYTES:
        raise InvalidProof("size")
    if not _COMPACT_JWS.fullmatch(proof):
        raise InvalidProof("compact")
    device_key, payload = _verified_parts(proof)
    try:
        claims = msgspec.json.decode(payload, type=_ProofClaims)  # §4.3 item 3
    except msgspec.MsgspecError:
        raise InvalidProof("claims") from None

    if claims.htm != method:  # §4.3 item 8; methods are case-sensitive (RFC 9110 §9.1)
        raise InvalidProof("htm")
    try:
        htu_matches = normalise_htu(claims.htu) == normalise_htu(url)  # §4.3 item 9
    except ValueError:
        raise InvalidProof("htu") from None
    if not htu_matches:
        raise InvalidProof("htu")
    # §4.3 item 11 and §11.1: a short window limits how long a captured proof is worth
    # anything, and bounds how long the caller must remember each jti.
    if not math.isfinite(claims.iat) or not (now - max_age_s <= claims.iat <= now + max_future_s):
        raise InvalidProof("iat")
    if access_token is not None:  # §4.3 item 12(a)
        try:
            expected_ath = access_token_hash(access_token)
        except UnicodeEncodeError:
            raise InvalidProof("ath") from None
        if claims.ath is None or not hmac.compare_digest(
            claims.ath.encode("utf-8"), expected_ath.encode("ascii")
        ):
            raise InvalidProof("ath")
    if expected_thumbprint is not None and not hmac.compare_digest(  # §4.3 item 12(b)
        device_key.thumbprint.encode("ascii"), expected_thumbprint.encode("utf-8")
    ):
        raise InvalidProof("thumbprint")
    return DPoPClaims(
        jti=claims.jti,
        htm=claims.htm,
        htu=claims.htu,
        iat=claims.iat,
        ath=claims.ath,
        thumbprint=device_key.thumbprint,
        jwk=device_key.jwk,
    )
