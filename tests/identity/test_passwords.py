from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import socket
import threading
from typing import Any

import argon2
import pytest
import zxcvbn
from argon2.exceptions import VerifyMismatchError

from server.errors import InvalidInput, TooManyRequests
from server.identity import passwords
from server.identity.passwords import (
    MAX_CODE_POINTS,
    MIN_CODE_POINTS,
    PasswordHasher,
    WeakPassword,
    check_policy,
    normalize,
)

PEPPER = bytes(range(32))
HANDLE = "nightowl.ops"
CONTEXT = ("Tipline", "Tipline Investigations")
STRONG = "purple lanterns drift over quiet harbours"


def reason_of(password: str, *, handle: str = HANDLE) -> str | None:
    try:
        check_policy(password, handle=handle, context_words=CONTEXT)
    except WeakPassword as exc:
        caught = exc
    else:
        return None
    assert password not in caught.detail, "the message must not echo the password"
    assert caught.slug == f"password-{caught.reason}"
    return caught.reason


def zxcvbn_score(password: str) -> int:
    return int(zxcvbn.zxcvbn(password, user_inputs=[HANDLE, *CONTEXT])["score"])


# --- policy -----------------------------------------------------------------------------------


def test_parameters_are_rfc_9106_second_recommended() -> None:
    assert argon2.profiles.RFC_9106_LOW_MEMORY == passwords.PARAMETERS
    assert (passwords.TIME_COST, passwords.MEMORY_COST_KIB, passwords.PARALLELISM) == (3, 65536, 4)
    assert (passwords.SALT_BYTES, passwords.HASH_BYTES) == (16, 32)
    assert (MIN_CODE_POINTS, MAX_CODE_POINTS, passwords.MIN_ZXCVBN_SCORE) == (15, 256, 3)


def test_length_is_counted_in_code_points_so_an_emoji_counts_once() -> None:
    fifteen = "owl\N{CRESCENT MOON} sings late"
    fourteen = fifteen[:-1]
    assert (len(fifteen), len(fifteen.encode())) == (15, 18)
    assert reason_of(fourteen) == "too-short", "17 UTF-8 bytes must still be 14 code points"
    assert reason_of(fifteen) is None


def test_length_is_counted_after_nfc() -> None:
    decomposed = "cafe\N{COMBINING ACUTE ACCENT} au lait!!"  # 15 code points, 14 after NFC
    assert len(decomposed) == 15
    assert len(normalize(decomposed)) == 14
    assert reason_of(decomposed) == "too-short"


def test_too_short_error_is_a_422_with_its_own_problem_type() -> None:
    with pytest.raises(WeakPassword) as caught:
        check_policy("short", handle=HANDLE, context_words=CONTEXT)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.status == 422
    assert caught.value.slug == "password-too-short"
    assert "15" in caught.value.detail


def test_256_code_points_are_accepted_and_257_refused() -> None:
    long = secrets.token_urlsafe(192)
    assert len(long) == 256
    assert reason_of(long) is None
    assert reason_of(long + "x") == "too-long"


def test_no_composition_rules_a_lowercase_passphrase_is_accepted() -> None:
    phrase = "correct horse battery staple"
    assert zxcvbn_score(phrase) >= 3
    assert reason_of(phrase) is None
    assert reason_of("le café crème du matin \N{CRESCENT MOON}") is None


def test_blocklisted_passwords_are_refused_whole_and_case_insensitively() -> None:
    assert reason_of("1qaz2wsx3edc4rfv") == "blocklisted"
    assert reason_of("1QAZ2WSX3EDC4RFV") == "blocklisted"
    assert reason_of("passwordstandard") == "blocklisted"


def test_a_blocklisted_word_inside_a_longer_phrase_is_accepted() -> None:
    # NIST compares the entire password, not substrings.
    assert reason_of("qwertasdfgzxcvb is my old password, not this one") is None


def test_passwords_built_from_the_handle_are_refused() -> None:
    # zxcvbn alone scores these 4 even with the handle as a user input: the rule is needed.
    assert zxcvbn_score("NightOwl.Ops-1987-nightowl") >= 3
    assert reason_of("NightOwl.Ops-1987-nightowl") == "contains-handle"
    assert reason_of("nightowlops!!nightowlops") == "contains-handle"
    assert reason_of("nightowl counts seven purple lanterns") is None


def test_passwords_built_from_the_organisation_or_app_name_are_refused() -> None:
    # As for the handle, zxcvbn alone would let this one through.
    assert zxcvbn_score("investigations-tipline-4471") >= 3
    assert reason_of("investigations-tipline-4471") == "contains-context"
    assert reason_of("Tipline Investigations 2024") == "contains-context"
    assert reason_of("tiptiplinelineTIPLINE-2024") == "contains-context"
    assert reason_of("\N{FULLWIDTH LATIN SMALL LETTER T}ipline!!2024!!2025") == "contains-context"
    assert reason_of("tipline keeps seven purple lanterns") is None


def test_guessable_passwords_are_refused_as_too_weak() -> None:
    assert reason_of("aaaaaaaaaaaaaaaaaaaa") == "too-weak"
    assert reason_of("Password12345678") == "too-weak"


def test_only_the_first_100_code_points_reach_zxcvbn(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = zxcvbn.zxcvbn

    def spy(password: str, **kwargs: Any) -> dict[str, Any]:
        seen.append(len(password))
        result: dict[str, Any] = real(password, **kwargs)
        return result

    monkeypatch.setattr(zxcvbn, "zxcvbn", spy)
    check_policy(secrets.token_urlsafe(192), handle=HANDLE, context_words=CONTEXT)
    assert seen == [100]


def test_policy_check_makes_no_network_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the password policy tried to use the network")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    assert reason_of("1qaz2wsx3edc4rfv") == "blocklisted"
    assert reason_of(STRONG) is None


# --- hashing ----------------------------------------------------------------------------------


class Spy:
    """Stands in for argon2's hasher, recording what reached verify and how many ran at once."""

    def __init__(self, inner: argon2.PasswordHasher) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.started = threading.Event()
        self.active = 0
        self.max_active = 0
        self.hashes: list[str] = []

    def verify(self, stored_hash: str, secret: bytes) -> bool:
        with self.lock:
            self.hashes.append(stored_hash)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            return self.inner.verify(stored_hash, secret)
        finally:
            with self.lock:
                self.active -= 1


def spy_on(hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch) -> Spy:
    spy = Spy(hasher._argon2)
    monkeypatch.setattr(hasher, "_argon2", spy)
    return spy


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(pepper=PEPPER, max_concurrency=2)


@pytest.fixture(scope="module")
async def stored(hasher: PasswordHasher) -> str:
    return await hasher.hash(STRONG)


def peppered(password: str, pepper: bytes = PEPPER) -> bytes:
    return hmac.new(pepper, normalize(password).encode(), hashlib.sha256).digest()


async def test_hash_is_argon2id_v19_with_the_chosen_parameters(stored: str) -> None:
    assert re.match(r"^\$argon2id\$v=19\$m=65536,t=3,p=4\$", stored)
    assert argon2.extract_parameters(stored) == passwords.PARAMETERS


async def test_same_password_gives_different_hashes(hasher: PasswordHasher, stored: str) -> None:
    assert await hasher.hash(STRONG) != stored


async def test_verify_accepts_the_exact_password_only(hasher: PasswordHasher, stored: str) -> None:
    assert await hasher.verify(stored, STRONG) is True
    assert await hasher.verify(stored, STRONG[:-1]) is False
    assert await hasher.verify(stored, STRONG.capitalize()) is False
    assert await hasher.verify(stored, STRONG + " ") is False


async def test_composed_and_decomposed_accents_verify_equal(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("caf\N{LATIN SMALL LETTER E WITH ACUTE} au lait du matin")
    decomposed = "cafe\N{COMBINING ACUTE ACCENT} au lait du matin"
    assert await hasher.verify(stored, decomposed) is True


async def test_the_pepper_is_applied_as_hmac_before_argon2(stored: str) -> None:
    # A stolen database alone cannot be attacked with stock argon2 tooling (SEC-AUTH-08).
    with pytest.raises(VerifyMismatchError):
        argon2.PasswordHasher().verify(stored, STRONG)
    assert argon2.PasswordHasher().verify(stored, peppered(STRONG)) is True


async def test_a_wrong_pepper_does_not_verify(stored: str) -> None:
    other = PasswordHasher(pepper=bytes(32), max_concurrency=1)
    assert await other.verify(stored, STRONG) is False


def test_the_pepper_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PasswordHasher(pepper=b"short", max_concurrency=1)


async def test_256_code_points_hash_and_verify_in_full(hasher: PasswordHasher) -> None:
    long = secrets.token_urlsafe(192)
    stored = await hasher.hash(long)
    assert await hasher.verify(stored, long) is True
    assert await hasher.verify(stored, long[:-1]) is False


async def test_over_256_code_points_never_reach_argon2(
    hasher: PasswordHasher, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = spy_on(hasher, monkeypatch)
    too_long = "x" * (MAX_CODE_POINTS + 1)
    assert await hasher.verify(stored, too_long) is False
    assert await hasher.dummy_verify(too_long) is False
    with pytest.raises(WeakPassword) as caught:
        await hasher.hash(too_long)
    assert caught.value.reason == "too-long"
    assert spy.hashes == []


def test_needs_rehash_for_weaker_or_other_argon2_types(hasher: PasswordHasher, stored: str) -> None:
    owasp_minimum = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    argon2i = argon2.PasswordHasher(type=argon2.Type.I)
    argon2d = argon2.PasswordHasher(type=argon2.Type.D)
    assert hasher.needs_rehash(stored) is False
    assert hasher.needs_rehash(owasp_minimum.hash(peppered(STRONG))) is True
    assert hasher.needs_rehash(argon2i.hash(peppered(STRONG))) is True
    assert hasher.needs_rehash(argon2d.hash(peppered(STRONG))) is True
    assert hasher.needs_rehash("garbage") is True


async def test_older_hashes_still_verify_so_they_can_be_upgraded(hasher: PasswordHasher) -> None:
    old = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    assert await hasher.verify(old.hash(peppered(STRONG)), STRONG) is True
    argon2i = argon2.PasswordHasher(type=argon2.Type.I, memory_cost=8192)
    assert await hasher.verify(argon2i.hash(peppered(STRONG)), STRONG) is True


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$!!!!$!!!!",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$",
        "$argon2id$v=19$m=65536,t=3,p=4$\N{LATIN SMALL LETTER E WITH ACUTE}$x",
        "$argon2id$v=19$m=x,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "$bcrypt$whatever",
    ],
)
async def test_verify_never_raises_on_a_garbage_hash(hasher: PasswordHasher, garbage: str) -> None:
    assert await hasher.verify(garbage, STRONG) is False


async def test_a_hash_costlier_than_ours_is_refused_unverified(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only tampering can produce one; verifying it would break the memory budget.
    costlier = argon2.PasswordHasher(time_cost=4, memory_cost=8, parallelism=1)
    stored = costlier.hash(peppered(STRONG))
    spy = spy_on(hasher, monkeypatch)
    assert await hasher.verify(stored, STRONG) is False
    assert spy.hashes == []


async def test_dummy_verify_is_false_and_runs_a_full_cost_verify(
    hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = spy_on(hasher, monkeypatch)
    assert await hasher.dummy_verify(STRONG) is False
    assert len(spy.hashes) == 1
    assert argon2.extract_parameters(spy.hashes[0]) == passwords.PARAMETERS


# --- concurrency --------------------------------------------------------------------------------


async def test_hashing_runs_off_the_event_loop(hasher: PasswordHasher) -> None:
    task = asyncio.create_task(hasher.hash(STRONG))
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.001)
        ticks += 1
    await task
    assert ticks >= 10, "the event loop was blocked while argon2 ran"


async def test_max_concurrency_bounds_simultaneous_verifies(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = PasswordHasher(pepper=PEPPER, max_concurrency=1)
    spy = spy_on(one, monkeypatch)
    assert await asyncio.gather(*(one.verify(stored, STRONG) for _ in range(3))) == [True] * 3
    assert spy.max_active == 1


async def test_the_overlap_measurement_does_see_parallel_verifies(
    hasher: PasswordHasher, stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Proves the previous test could fail: with two slots, two verifies do overlap.
    spy = spy_on(hasher, monkeypatch)
    await asyncio.gather(hasher.verify(stored, STRONG), hasher.verify(stored, STRONG))
    assert spy.max_active == 2


async def test_a_cancelled_verify_keeps_its_slot_until_argon2_finishes(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = PasswordHasher(pepper=PEPPER, max_concurrency=1)
    spy = spy_on(one, monkeypatch)
    first = asyncio.create_task(one.verify(stored, STRONG))
    assert await asyncio.to_thread(spy.started.wait, 10)
    first.cancel()
    assert await one.verify(stored, STRONG) is True
    assert spy.max_active == 1
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_callers_beyond_max_waiting_fail_fast_with_429(stored: str) -> None:
    busy = PasswordHasher(pepper=PEPPER, max_concurrency=1, max_waiting=1)
    results = await asyncio.gather(
        *(busy.verify(stored, STRONG) for _ in range(3)), return_exceptions=True
    )
    assert results[:2] == [True, True]
    assert isinstance(results[2], TooManyRequests)
    assert results[2].headers == {"Retry-After": "1"}
