"""TOTP (RFC 6238) checks and seed sealing; pure apart from the clock the caller passes in.

Parameters are RFC 6238 §4 and RFC 4226 defaults that every authenticator app supports:
HMAC-SHA-1, 6 digits, 30 s steps from T0 = 0, 160-bit seeds (RFC 4226 R6).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import uuid
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from server.errors import TiplineError

DIGITS: Final = 6
STEP_SECONDS: Final = 30
# pyotp.random_base32() default: 32 base32 characters = 160 bits.
SEED_BASE32_CHARS: Final = 32

# pyotp NFKC-normalises a submitted code before comparing, so full-width digits (U+FF10..)
# would pass it; only six ASCII digits may reach any comparison. Use with fullmatch: `$` would let a
# trailing newline through.
CODE_PATTERN: Final = re.compile(r"[0-9]{6}", re.ASCII)

NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
KEY_BYTES: Final = 32
# Binds a sealed seed to its purpose as well as to its account, so the same key can never be
# made to open some other sealed value as a seed.
_AAD_PREFIX: Final = b"tipline:totp-seed:v1:"


class SealedSeedError(TiplineError):
    """A sealed seed does not open: wrong key, wrong account or tampered bytes."""


def new_seed() -> str:
    return pyotp.random_base32(length=SEED_BASE32_CHARS)


def _totp(seed: str) -> pyotp.TOTP:
    return pyotp.TOTP(seed, digits=DIGITS, digest=hashlib.sha1, interval=STEP_SECONDS)


def provisioning_uri(seed: str, *, account_name: str, issuer: str) -> str:
    return _totp(seed).provisioning_uri(name=account_name, issuer_name=issuer)


def matching_step(seed: str, code: str, *, now: float) -> int | None:
    """The RFC 6238 time step whose code equals `code`: the current step or the one before.

    One step back absorbs network delay and a slow typist (RFC 6238 §5.2); a future step is
    never accepted, unlike pyotp's symmetric `valid_window`, which would stretch a code's life
    to about 90 s. This is a recorded deviation from ASVS 6.5.5 ("30 seconds").

    Replay is the caller's job, done in SQL: accept only if the returned step is greater than
    the account's last accepted step, and store it in the same statement
    (`UPDATE ... SET totp_last_step = $step WHERE id = $id AND totp_last_step < $step`), so two
    concurrent logins with one code cannot both win (RFC 6238 §5.2, pyotp issue #61).
    """
    if CODE_PATTERN.fullmatch(code) is None:
        return None
    totp = _totp(seed)
    current = int(now // STEP_SECONDS)
    submitted = code.encode("ascii")
    matched: int | None = None
    # Both steps are always computed and compared, so the time taken does not reveal which
    # one matched.
    for step in (current - 1, current):
        if step >= 0 and hmac.compare_digest(totp.generate_otp(step).encode("ascii"), submitted):
            matched = step
    return matched


def seal_seed(key: bytes, account_id: uuid.UUID, seed: str) -> bytes:
    """ChaCha20-Poly1305 under a key from the secret store (SEC-MFA-08): nonce || ciphertext.

    The account id is associated data, so a database writer cannot move a known seed onto
    another operative's account.
    """
    nonce = os.urandom(NONCE_BYTES)
    return nonce + ChaCha20Poly1305(key).encrypt(nonce, seed.encode("ascii"), _aad(account_id))


def open_seed(key: bytes, account_id: uuid.UUID, sealed: bytes) -> str:
    if len(sealed) < NONCE_BYTES + TAG_BYTES:
        raise SealedSeedError
    nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
    try:
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, _aad(account_id))
    except InvalidTag:
        raise SealedSeedError from None
    return plaintext.decode("ascii")


def _aad(account_id: uuid.UUID) -> bytes:
    return _AAD_PREFIX + account_id.bytes
