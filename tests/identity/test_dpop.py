"""DPoP proofs made by the reference client, checked by the server's verifier (RFC 9449 §4.3).

Every negative test starts from a proof that is valid apart from the one defect under test and
asserts the internal reason, so removing any single check makes its test fail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from clients.reference_client.device import DeviceKeyPair, KeyKind, b64url, make_proof
from server.errors import InvalidInput, Unauthenticated
from server.identity.dpop import (
    MAX_PROOF_BYTES,
    InvalidDeviceKey,
    InvalidProof,
    normalise_htu,
    parse_device_jwk,
    verify_proof,
)

NOW = 1_700_000_000.0
MAX_AGE_S = 60.0
MAX_FUTURE_S = 5.0
URL = "https://tipline.example.org/v1/reports"
TOKEN = "session-token-0123456789abcdefghijklmnopqrstuvwxyz"
KINDS: tuple[KeyKind, ...] = ("p256", "ed25519")


@pytest.fixture(scope="module", params=KINDS)
def key(request: pytest.FixtureRequest) -> DeviceKeyPair:
    return DeviceKeyPair.generate(cast("KeyKind", request.param))


@pytest.fixture(scope="module")
def p256() -> DeviceKeyPair:
    return DeviceKeyPair.generate("p256")


@pytest.fixture(scope="module")
def ed() -> DeviceKeyPair:
    return DeviceKeyPair.generate("ed25519")


def verify(proof: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "method": "POST",
        "url": URL,
        "now": NOW,
        "max_age_s": MAX_AGE_S,
        "max_future_s": MAX_FUTURE_S,
        "access_token": TOKEN,
        "expected_thumbprint": None,
    }
    arguments.update(overrides)
    return verify_proof(proof, **arguments)


def refused(proof: str, reason: str, **overrides: Any) -> None:
    with pytest.raises(InvalidProof) as caught:
        verify(proof, **overrides)
    assert caught.value.reason == reason


def segment(value: object) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def forge(
    signer: DeviceKeyPair,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A proof signed by `signer`, with header/claim members overridden or dropped."""
    full_header: dict[str, Any] = {"typ": "dpop+jwt", "alg": signer.alg, "jwk": signer.public_jwk()}
    full_claims: dict[str, Any] = {
        "jti": b64url(b"\x01" * 16),
        "htm": "POST",
        "htu": URL,
        "iat": int(NOW),
        "ath": b64url(hashlib.sha256(TOKEN.encode()).digest()),
    }
    full_header.update(header or {})
    full_claims.update(claims or {})
    for name in drop:
        full_header.pop(name, None)
        full_claims.pop(name, None)
    signing_input = f"{segment(full_header)}.{segment(full_claims)}"
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"


# -- the point: a second, independent implementation interoperates -------------------------


def test_client_proof_verifies_on_server(key: DeviceKeyPair) -> None:
    proof = make_proof(key, "POST", URL, access_token=TOKEN, now=NOW)
    claims = verify(proof, expected_thumbprint=key.thumbprint())
    assert claims.thumbprint == key.thumbprint()
    assert (claims.htm, claims.htu, claims.iat) == ("POST", URL, NOW)
    assert claims.ath == b64url(hashlib.sha256(TOKEN.encode()).digest())
    assert len(base64.urlsafe_b64decode(claims.jti + "==")) >= 16


def test_client_proof_without_token_verifies_where_no_token_is_due(key: DeviceKeyPair) -> None:
    proof = make_proof(key, "GET", URL + "?cursor=abc#frag", now=NOW)
    claims = verify(proof, method="GET", url=URL + "?cursor=abc", access_token=None)
    assert claims.ath is None
    assert claims.htu == URL


def test_server_and_client_agree_on_thumbprint(key: DeviceKeyPair) -> None:
    assert parse_device_jwk(key.public_jwk()).thumbprint == key.thumbprint()


def test_thumbprint_matches_rfc_8037_vector() -> None:
    # RFC 8037 Appendix A.3.
    jwk = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert parse_device_jwk(jwk).thumbprint == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_every_proof_has_a_fresh_jti(key: DeviceKeyPair) -> None:
    jtis = {verify(make_proof(key, "POST", URL, TOKEN, now=NOW)).jti for _ in range(50)}
    assert len(jtis) == 50


def test_forge_helper_makes_valid_proofs(key: DeviceKeyPair) -> None:
    # Guards the negative tests below: their baseline proof must be acceptable.
    assert verify(forge(key)).jti == b64url(b"\x01" * 16)


# -- header: typ, alg, jwk ----------------------------------------------------------------


def test_wrong_typ_is_refused(key: DeviceKeyPair) -> None:
    refused(forge(key, header={"typ": "JWT"}), "typ")
    refused(forge(key, drop=("typ",)), "typ")


def test_alg_none_is_refused(key: DeviceKeyPair) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}
    unsigned = f"{segment(header)}.{forge(key).split('.')[1]}"
    refused(unsigned + ".", "compact")
    refused(unsigned + "." + b64url(b"x"), "alg")


def test_hs256_keyed_with_the_public_key_is_refused(p256: DeviceKeyPair) -> None:
    # The classic confusion: a verifier that lets the header pick HMAC and uses the public key
    # (which the attacker knows) as the MAC secret.
    jwk = p256.public_jwk()
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}
    signing_input = f"{segment(header)}.{forge(p256).split('.')[1]}"
    for secret in (json.dumps(jwk).encode(), base64.urlsafe_b64decode(jwk["x"] + "=")):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        refused(f"{signing_input}.{b64url(mac)}", "alg")


@pytest.mark.parametrize("alg", ["RS256", "ES384", "PS256", "ES256K", "Ed25519", "es256"])
def test_algorithms_outside_the_allow_list_are_refused(p256: DeviceKeyPair, alg: str) -> None:
    refused(forge(p256, header={"alg": alg}), "alg")


def test_alg_must_match_key_type(p256: DeviceKeyPair, ed: DeviceKeyPair) -> None:
    refused(forge(p256, header={"alg": "EdDSA"}), "alg-key-mismatch")
    refused(forge(ed, header={"alg": "ES256"}), "alg-key-mismatch")


def test_jwk_with_private_member_is_refused(key: DeviceKeyPair) -> None:
    refused(forge(key, header={"jwk": {**key.public_jwk(), "d": b64url(b"\x07" * 32)}}), "jwk")


def test_missing_or_non_object_jwk_is_refused(key: DeviceKeyPair) -> None:
    refused(forge(key, drop=("jwk",)), "jwk")
    refused(forge(key, header={"jwk": key.thumbprint()}), "jwk")


def test_crit_header_is_refused(key: DeviceKeyPair) -> None:
    # PyJWT refuses extensions it does not know; `b64` it knows, and would detach the payload.
    refused(forge(key, header={"crit": ["exp"], "exp": 1}), "header")
    refused(forge(key, header={"crit": ["b64"], "b64": True}), "crit")


def test_signature_by_another_key_is_refused(key: DeviceKeyPair) -> None:
    # An attacker claims the victim's public key but can only sign with their own.
    other = DeviceKeyPair.generate("p256" if key.alg == "ES256" else "ed25519")
    refused(forge(other, header={"jwk": key.public_jwk()}), "signature")


# -- claims ---------------------------------------------------------------------------------


def test_wrong_htm_is_refused(key: DeviceKeyPair) -> None:
    refused(forge(key, claims={"htm": "GET"}), "htm")
    refused(forge(key, claims={"htm": "post"}), "htm")


@pytest.mark.parametrize(
    "htu",
    [
        "https://tipline.example.org/v1/sessions",
        "https://tipline.example.org/v1/reports/",
        "https://evil.example.org/v1/reports",
        "http://tipline.example.org/v1/reports",
        "https://tipline.example.org:8443/v1/reports",
        "https://tipline.example.org/v1/REPORTS",
    ],
)
def test_wrong_htu_is_refused(key: DeviceKeyPair, htu: str) -> None:
    refused(forge(key, claims={"htu": htu}), "htu")


@pytest.mark.parametrize(
    "htu",
    [
        "https://user@tipline.example.org/v1/reports",
        "ftp://tipline.example.org/v1/reports",
        "https://tipline.example.org/v1/reports\n",
        "https://tipline.example.org/v1/re ports",
        "https://tipline.example.org/v1/%zzreports",
        "https://tipline.example.org:99999/v1/reports",
        "/v1/reports",
    ],
)
def test_malformed_htu_is_refused(key: DeviceKeyPair, htu: str) -> None:
    refused(forge(key, claims={"htu": htu}), "htu")


@pytest.mark.parametrize(
    ("htu", "url"),
    [
        (URL + "?page=2", URL),
        (URL, URL + "?page=2#top"),
        (URL + "#frag", URL),
        ("HTTPS://TIPLINE.Example.ORG:443/v1/reports", URL),
        ("https://tipline.example.org/v1/%72eports", URL),
        ("https://tipline.example.org/v1/./x/../reports", URL),
        ("http://127.0.0.1:80/v1/reports", "http://127.0.0.1/v1/reports"),
        ("https://[::1]:8443/v1/reports", "https://[::1]:8443/v1/reports"),
    ],
)
def test_htu_compares_without_query_and_after_normalisation(
    p256: DeviceKeyPair, htu: str, url: str
) -> None:
    assert verify(forge(p256, claims={"htu": htu}), url=url).htu == htu


def test_normalise_htu_keeps_reserved_percent_encodings_distinct() -> None:
    # %2F is a reserved character: decoding it would merge two different paths.
    assert normalise_htu("https://h.example/a%2fb") == "https://h.example/a%2Fb"
    assert normalise_htu("https://h.example/a%2Fb") != normalise_htu("https://h.example/a/b")
    assert normalise_htu("https://H.example") == "https://h.example/"


def test_stale_iat_is_refused(key: DeviceKeyPair) -> None:
    assert verify(forge(key, claims={"iat": NOW - MAX_AGE_S}))
    refused(forge(key, claims={"iat": NOW - MAX_AGE_S - 1}), "iat")


def test_future_iat_is_refused(key: DeviceKeyPair) -> None:
    assert verify(forge(key, claims={"iat": NOW + MAX_FUTURE_S}))
    refused(forge(key, claims={"iat": NOW + MAX_FUTURE_S + 1}), "iat")


def test_missing_ath_is_refused_when_a_token_is_presented(key: DeviceKeyPair) -> None:
    refused(forge(key, drop=("ath",)), "ath")


def test_ath_for_another_token_is_refused(key: DeviceKeyPair) -> None:
    proof = make_proof(key, "POST", URL, access_token="another-token", now=NOW)
    refused(proof, "ath")
    refused(forge(key), "ath", access_token="tökén")


def test_thumbprint_mismatch_is_refused(key: DeviceKeyPair) -> None:
    other = DeviceKeyPair.generate("p256")
    refused(forge(key), "thumbprint", expected_thumbprint=other.thumbprint())


@pytest.mark.parametrize(
    "claims",
    [
        {"jti": "short"},
        {"jti": "x" * 129},
        {"jti": "sixteen chars ok" + "\x00"},
        {"iat": "1700000000"},
        {"iat": True},
        {"iat": 1e400},
        {"htm": ""},
        {"nonce": "server-never-issued-this"},
        {"extra": 1},
    ],
)
def test_malformed_claims_are_refused(key: DeviceKeyPair, claims: dict[str, Any]) -> None:
    refused(forge(key, claims=claims), "claims")


def test_missing_required_claims_are_refused(key: DeviceKeyPair) -> None:
    for name in ("jti", "htm", "htu", "iat"):
        refused(forge(key, drop=(name,)), "claims")


# -- tampering, size, garbage ---------------------------------------------------------------


def test_tampered_payload_is_refused(key: DeviceKeyPair) -> None:
    header, _, signature = forge(key).split(".")
    other_payload = forge(key, claims={"htm": "DELETE"}).split(".")[1]
    refused(f"{header}.{other_payload}.{signature}", "signature", method="DELETE")


def test_tampered_header_is_refused(key: DeviceKeyPair) -> None:
    _, payload, signature = forge(key).split(".")
    header = segment({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk(), "kid": "x"})
    refused(f"{header}.{payload}.{signature}", "signature")


def test_tampered_signature_is_refused(key: DeviceKeyPair) -> None:
    header, payload, signature = forge(key).split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    for position in (0, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        refused(f"{header}.{payload}.{b64url(bytes(flipped))}", "signature")
    refused(f"{header}.{payload}.{b64url(bytes(raw[:-1]))}", "signature")


def test_oversized_proof_is_refused_even_when_validly_signed(key: DeviceKeyPair) -> None:
    proof = forge(key, header={"kid": "k" * MAX_PROOF_BYTES})
    refused(proof, "size")


def test_every_single_character_change_is_refused(ed: DeviceKeyPair) -> None:
    proof = forge(ed)
    alphabet = "AaZz09-_."
    for index, char in enumerate(proof):
        replacement = next(c for c in alphabet if c != char)
        with pytest.raises(InvalidProof):
            verify(proof[:index] + replacement + proof[index + 1 :])


def _garbage() -> list[object]:
    rng = random.Random(9449)  # noqa: S311 - reproducible fuzz input, not a secret
    deep = "[" * 5000 + "]" * 5000
    samples: list[object] = [
        None,
        42,
        b"a.b.c",
        "",
        ".",
        "..",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "é.é.é",
        "a\x00.b.c",
        f"{segment(None)}.{segment({})}.AA",
        f"{segment([])}.{segment({})}.AA",
        f"{segment('dpop+jwt')}.{segment({})}.AA",
        f"{b64url(deep.encode())}.{segment({})}.AA",
        f"{b64url(b'{')}.{segment({})}.AA",
        f"{b64url(bytes([0xFF, 0xFE]))}.{segment({})}.AA",
        f"{segment({'typ': 'dpop+jwt', 'alg': 'ES256', 'jwk': []})}.{segment({})}.AA",
        f"{segment({'typ': 'dpop+jwt', 'alg': ['ES256'], 'jwk': {}})}.{segment({})}.AA",
        f"{segment({'typ': 'dpop+jwt', 'alg': 'ES256', 'jwk': {'kty': 1}})}.e30.AA",
        f"{segment({'typ': 1, 'alg': None})}.{segment({})}.AA",
        f"{segment({'typ': 'dpop+jwt', 'alg': 'ES256', 'kid': 5})}.e30.AA",
        "eyJ=.eyJ.AA",
        "A" * (MAX_PROOF_BYTES + 1),
    ]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
    for _ in range(300):
        length = rng.randrange(1, 200)
        samples.append("".join(rng.choice(alphabet) for _ in range(length)))
        raw = [b64url(rng.randbytes(rng.randrange(1, 80))) for _ in range(3)]
        samples.append(".".join(raw))
    return samples


def test_garbage_only_ever_raises_invalid_proof() -> None:
    for sample in _garbage():
        with pytest.raises(InvalidProof):
            verify(cast("str", sample))


def test_garbage_in_signed_claims_only_ever_raises_invalid_proof(p256: DeviceKeyPair) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": p256.public_jwk()}
    payloads = [b"null", b"[]", b'"s"', b"{", b"[" * 5000, b"\xff", b'{"jti":{}}']
    for payload in payloads:
        signing_input = f"{segment(header)}.{b64url(payload)}"
        proof = f"{signing_input}.{b64url(p256.sign(signing_input.encode()))}"
        refused(proof, "claims")


def test_failures_are_indistinguishable_to_the_client(key: DeviceKeyPair) -> None:
    errors: list[InvalidProof] = []
    for proof in (forge(key, header={"typ": "JWT"}), forge(key, claims={"htm": "GET"}), "x"):
        with pytest.raises(InvalidProof) as caught:
            verify(proof)
        errors.append(caught.value)
    assert {(e.status, e.slug, e.detail, tuple(e.headers.items())) for e in errors} == {
        (
            401,
            Unauthenticated.slug,
            "Invalid DPoP proof",
            (("WWW-Authenticate", 'DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"'),),
        )
    }
    assert isinstance(errors[0], Unauthenticated)


# -- device key registration ----------------------------------------------------------------


def _flip_last_bit(value: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(value + "="))
    raw[-1] ^= 0x01
    return b64url(bytes(raw))


def test_parse_device_jwk_accepts_public_keys(key: DeviceKeyPair) -> None:
    parsed = parse_device_jwk({**key.public_jwk(), "alg": key.alg, "use": "sig", "kid": "phone"})
    assert parsed.jwk == key.public_jwk()
    assert parsed.alg == key.alg


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda j: {**j, "d": b64url(b"\x05" * 32)}, id="private-d"),
        pytest.param(lambda j: {**j, "k": "c2VjcmV0"}, id="symmetric-k"),
        pytest.param(lambda j: {"kty": "RSA", "n": j["x"], "e": "AQAB"}, id="rsa"),
        pytest.param(lambda j: {"kty": "oct", "k": j["x"]}, id="oct"),
        pytest.param(lambda j: {**j, "crv": "P-384"}, id="p384"),
        pytest.param(lambda j: {**j, "crv": "secp256k1"}, id="secp256k1"),
        pytest.param(lambda j: {"kty": "OKP", "crv": "X25519", "x": j["x"]}, id="x25519"),
        pytest.param(lambda j: {"kty": "OKP", "crv": "Ed448", "x": j["x"]}, id="ed448"),
        pytest.param(lambda j: {**j, "y": _flip_last_bit(j["y"])}, id="off-curve"),
        pytest.param(lambda j: {**j, "x": j["x"][:-2]}, id="short-x"),
        pytest.param(lambda j: {**j, "x": j["x"] + "="}, id="padded-x"),
        pytest.param(lambda j: {**j, "x": j["x"][:-1] + "+"}, id="not-base64url"),
        pytest.param(lambda j: {k: v for k, v in j.items() if k != "y"}, id="missing-y"),
        pytest.param(lambda j: {**j, "x5u": "https://evil.example/k"}, id="extra-member"),
        pytest.param(lambda j: {**j, "alg": "EdDSA"}, id="alg-mismatch"),
        pytest.param(lambda j: {**j, "use": "enc"}, id="use-enc"),
        pytest.param(lambda j: {**j, "x": 5}, id="x-not-string"),
        pytest.param(lambda j: [j], id="not-an-object"),
    ],
)
def test_parse_device_jwk_refuses(p256: DeviceKeyPair, mutate: Any) -> None:
    with pytest.raises(InvalidDeviceKey) as caught:
        parse_device_jwk(mutate(p256.public_jwk()))
    assert isinstance(caught.value, InvalidInput)


def test_parse_device_jwk_names_leaked_private_key(key: DeviceKeyPair) -> None:
    with pytest.raises(InvalidDeviceKey) as caught:
        parse_device_jwk({**key.public_jwk(), "d": b64url(b"\x05" * 32)})
    assert "private" in caught.value.detail


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_parse_device_jwk_refuses_wrong_length_ed25519_keys(size: int) -> None:
    with pytest.raises(InvalidDeviceKey):
        parse_device_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x09" * size)})


def test_parse_device_jwk_refuses_non_canonical_base64url(p256: DeviceKeyPair) -> None:
    # 32 bytes -> 43 characters, whose last carries 2 unused bits: one key, two spellings,
    # two thumbprints, unless non-canonical spellings are refused.
    jwk = p256.public_jwk()
    last = jwk["x"][-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 0x01]
    x_twin = jwk["x"][:-1] + twin
    assert base64.urlsafe_b64decode(x_twin + "=") == base64.urlsafe_b64decode(jwk["x"] + "=")
    with pytest.raises(InvalidDeviceKey):
        parse_device_jwk({**jwk, "x": x_twin})


def test_parse_device_jwk_refuses_invalid_ed25519_points(ed: DeviceKeyPair) -> None:
    small_order = [bytes(32), bytes([1]) + bytes(31), bytes([0xEC]) + b"\xff" * 30 + b"\x7f"]
    for raw in small_order:
        with pytest.raises(InvalidDeviceKey):
            parse_device_jwk({"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)})
    # cryptography loads these bytes without complaint; the check must be ours.
    ed25519.Ed25519PublicKey.from_public_bytes(small_order[1])
