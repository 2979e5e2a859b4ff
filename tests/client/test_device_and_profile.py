"""The reference client's device key, DPoP proofs and encrypted local profile."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from clients.reference_client.device import (
    DeviceKeyError,
    DeviceKeyPair,
    KeyKind,
    b64url,
    make_proof,
)
from clients.reference_client.profile import (
    Profile,
    ProfileError,
    load_profile,
    new_profile,
    save_profile,
)

PASSPHRASE = "correct horse battery staple, in a tuk-tuk"
HANDLE = "operative-handle-7f3a"
SESSION_TOKEN = "session-token-that-must-stay-secret-123456"
# RFC 8037 Appendix A.1-A.4: an Ed25519 key, its thumbprint and a JWS it signs.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
RFC8037_SIGNING_INPUT = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
RFC8037_SIGNATURE = (
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def decode_segment(value: str) -> dict[str, object]:
    decoded = json.loads(unb64url(value))
    assert isinstance(decoded, dict)
    return decoded


# -- device key and proofs ------------------------------------------------------------------


def test_ed25519_key_matches_rfc_8037_vectors() -> None:
    key = DeviceKeyPair(ed25519.Ed25519PrivateKey.from_private_bytes(unb64url(RFC8037_D)))
    assert key.public_jwk() == {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert key.thumbprint() == RFC8037_THUMBPRINT
    assert b64url(key.sign(RFC8037_SIGNING_INPUT.encode())) == RFC8037_SIGNATURE


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_private_key_survives_pem_round_trip(kind: KeyKind) -> None:
    key = DeviceKeyPair.generate(kind)
    restored = DeviceKeyPair.from_pem(key.to_pem())
    assert restored.public_jwk() == key.public_jwk()
    assert restored.thumbprint() == key.thumbprint()


def test_default_key_is_p256() -> None:
    assert DeviceKeyPair.generate().public_jwk()["crv"] == "P-256"


def test_other_curves_are_refused() -> None:
    with pytest.raises(DeviceKeyError):
        DeviceKeyPair(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(DeviceKeyError):
        DeviceKeyPair.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_proof_shape(kind: KeyKind) -> None:
    key = DeviceKeyPair.generate(kind)
    proof = make_proof(key, "PATCH", "https://t.example/v1/reports/1?x=1#f", "tok", now=1000.9)
    header_b64, payload_b64, signature_b64 = proof.split(".")
    header, claims = decode_segment(header_b64), decode_segment(payload_b64)
    assert header == {"typ": "dpop+jwt", "alg": key.alg, "jwk": key.public_jwk()}
    assert "d" not in key.public_jwk()
    assert claims["htm"] == "PATCH"
    assert claims["htu"] == "https://t.example/v1/reports/1"
    assert claims["iat"] == 1000
    assert claims["ath"] == b64url(hashlib.sha256(b"tok").digest())
    assert set(claims) == {"jti", "htm", "htu", "iat", "ath"}
    jti = claims["jti"]
    assert isinstance(jti, str)
    assert len(unb64url(jti)) * 8 >= 128

    # Checked with `cryptography` alone, not with the server's verifier.
    signature = unb64url(signature_b64)
    signing_input = f"{header_b64}.{payload_b64}".encode()
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        assert len(signature) == 64  # RFC 7518 §3.4: R || S, not DER
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        public.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(signature, signing_input)


def test_proof_without_token_has_no_ath_and_fresh_jtis() -> None:
    key = DeviceKeyPair.generate()
    proofs = [make_proof(key, "GET", "https://t.example/v1/me") for _ in range(20)]
    claims = [decode_segment(proof.split(".")[1]) for proof in proofs]
    assert all("ath" not in c for c in claims)
    assert len({c["jti"] for c in claims}) == 20


# -- encrypted profile ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def profile() -> Profile:
    base = new_profile(
        "https://tipline.example.org", HANDLE, org_root_fingerprint="SHA256:rootfingerprint"
    )
    return Profile(
        server_url=base.server_url,
        handle=base.handle,
        device_key_pem=base.device_key_pem,
        age_identity=base.age_identity,
        account_id="7d0c1f1e-2b8a-4b8e-9a53-0e1c2d3f4a5b",
        role="operative",
        org_root_fingerprint=base.org_root_fingerprint,
        session_token=SESSION_TOKEN,
    )


@pytest.fixture(scope="module")
def saved(profile: Profile, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # age passphrase files use scrypt on purpose (seconds per call): save once for the module.
    path = tmp_path_factory.mktemp("profile") / "profile.age"
    save_profile(path, profile, PASSPHRASE)
    return path


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_profile_round_trip(saved: Path, profile: Profile) -> None:
    loaded = load_profile(saved, PASSPHRASE)
    assert loaded == profile
    assert loaded.device_key().thumbprint() == profile.device_key().thumbprint()
    ciphertext = pyrage.encrypt(
        b"reply", [pyrage.x25519.Recipient.from_str(loaded.age_recipient())]
    )
    assert pyrage.decrypt(ciphertext, [loaded.identity()]) == b"reply"


def test_wrong_passphrase_is_refused(saved: Path) -> None:
    with pytest.raises(ProfileError):
        load_profile(saved, PASSPHRASE + "!")


def test_profile_file_is_not_plaintext(saved: Path, profile: Profile) -> None:
    data = saved.read_bytes()
    assert data.startswith(b"age-encryption.org/v1\n")
    pem_body = "".join(profile.device_key_pem.splitlines()[1:-1])
    secrets_in_profile = [
        HANDLE,
        SESSION_TOKEN,
        profile.age_identity,
        profile.age_recipient(),
        pem_body[:40],
        "PRIVATE KEY",
        profile.device_key().public_jwk()["x"],
        "tipline.example.org",
        "operative",
        "rootfingerprint",
    ]
    for secret in secrets_in_profile:
        assert secret.encode() not in data, secret
        assert secret.encode().hex().encode() not in data
        assert base64.b64encode(secret.encode())[:16] not in data


def test_profile_file_mode_is_0600(saved: Path) -> None:
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_overwrite_keeps_0600_and_leaves_no_temporary_file(
    profile: Profile, tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "profile.age"
    path.write_bytes(b"old")
    path.chmod(0o644)
    save_profile(path, profile, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["profile.age"]
    assert path.read_bytes() != b"old"


def test_damaged_or_missing_profile_is_refused(saved: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.age"
    data = bytearray(saved.read_bytes())
    data[-1] ^= 0x01
    damaged.write_bytes(bytes(data))
    with pytest.raises(ProfileError):
        load_profile(damaged, PASSPHRASE)
    with pytest.raises(ProfileError):
        load_profile(tmp_path / "absent.age", PASSPHRASE)


def test_empty_passphrase_is_refused(profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(ProfileError):
        save_profile(tmp_path / "profile.age", profile, "")
    assert not (tmp_path / "profile.age").exists()


def test_profile_repr_hides_secrets(profile: Profile) -> None:
    text = repr(profile)
    assert SESSION_TOKEN not in text
    assert HANDLE not in text
    assert "PRIVATE" not in text
    assert "AGE-SECRET-KEY" not in text
