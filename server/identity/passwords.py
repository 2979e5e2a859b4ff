"""Password policy and storage (SEC-AUTH-01..04, 06..09).

Storage is HMAC-SHA-256(pepper, NFC(password)) fed to argon2id with the RFC 9106 §4 SECOND
RECOMMENDED parameters. The pepper lives in the secret store, never in the database, so a stolen
database alone cannot be brute-forced (SEC-AUTH-08, 63B-4 §3.1.1.2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, TypeVar

import argon2
import zxcvbn
from argon2.exceptions import Argon2Error
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from server.errors import InvalidInput, TooManyRequests

_log = logging.getLogger("tipline.identity.passwords")

# RFC 9106 §4 SECOND RECOMMENDED option; identical to argon2-cffi's RFC_9106_LOW_MEMORY. It
# exceeds ASVS 5.0 App. C (t=3: m >= 12 MiB) and the OWASP minimum (m=19 MiB, t=2, p=1).
ARGON2_TYPE: Final = argon2.Type.ID
ARGON2_VERSION: Final = 19
TIME_COST: Final = 3
MEMORY_COST_KIB: Final = 65536
PARALLELISM: Final = 4
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32

PARAMETERS: Final = argon2.Parameters(
    type=ARGON2_TYPE,
    version=ARGON2_VERSION,
    salt_len=SALT_BYTES,
    hash_len=HASH_BYTES,
    time_cost=TIME_COST,
    memory_cost=MEMORY_COST_KIB,
    parallelism=PARALLELISM,
)

# 63B-4 §3.1.1.2 item 1: 15 for passwords that could stand alone; our MFA would allow 8, but
# operatives are high-value targets. The cap only bounds hashing cost (63B-4 App. A.2).
MIN_CODE_POINTS: Final = 15
MAX_CODE_POINTS: Final = 256
MIN_ZXCVBN_SCORE: Final = 3
PEPPER_BYTES: Final = 32

# zxcvbn's matcher is super-linear in the input length (about 0.1 s at 100 code points on the
# reference machine, and worse beyond), so an attacker-sized password must not reach it whole.
# If the first 100 code points are already hard to guess, the full password is at least as hard.
ZXCVBN_MAX_CODE_POINTS: Final = 100

# Context rule (SEC-AUTH-04, ASVS 6.2.11): a password that contains the handle or a context word
# (organisation, app) and, once every such word and every non-letter is removed, has fewer than
# this many letters left is refused. "Tipline2024!!tipline" and "alice.smith-alice.smith-1" fall;
# "alice counts seven purple lanterns" does not. Words shorter than 3 letters are ignored, as
# they would match inside ordinary words.
MIN_LETTERS_BEYOND_CONTEXT: Final = 5
MIN_CONTEXT_TOKEN_LENGTH: Final = 3

Reason = Literal[
    "too-short", "too-long", "blocklisted", "contains-handle", "contains-context", "too-weak"
]

# 63B-4 §3.1.1.2 requires the reason for a rejection to be given; none of these echo the input.
_MESSAGES: Final[dict[Reason, str]] = {
    "too-short": f"The password must be at least {MIN_CODE_POINTS} characters long.",
    "too-long": f"The password must be at most {MAX_CODE_POINTS} characters long.",
    "blocklisted": "The password is on the list of common or breached passwords.",
    "contains-handle": "The password is mostly made of the account handle.",
    "contains-context": "The password is mostly made of the organisation or app name.",
    "too-weak": "The password is too easy to guess; a phrase of several unrelated words works.",
}

# A local list so that no password-derived data ever leaves the server (SEC-AUTH-04): the
# 30 000 most common passwords from breach corpora that zxcvbn ships, compared whole.
_BLOCKLIST: Final = frozenset(FREQUENCY_LISTS["passwords"])

# zxcvbn stores the caller's user_inputs in a module-global dictionary for the duration of a
# call, so two threads scoring at once could score one password against another's handle.
_ZXCVBN_LOCK: Final = threading.Lock()


class WeakPassword(InvalidInput):
    def __init__(self, reason: Reason) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason: Reason = reason
        # Distinct problem types (`…:password-too-short`) so clients can explain without
        # parsing text.
        self.slug = f"password-{reason}"


def normalize(password: str) -> str:
    # 63B-4 §3.1.1.2: NFC before hashing, so "é" typed as one or two code points is one password.
    return unicodedata.normalize("NFC", password)


def check_policy(password: str, *, handle: str, context_words: Sequence[str]) -> None:
    """Refuse a new password with `WeakPassword`; no composition rules (ASVS 6.2.5).

    Runs locally only. zxcvbn costs up to about 0.1 s of CPU, so callers on the event loop
    should run it with `asyncio.to_thread`.
    """
    normalized = normalize(password)
    if len(normalized) < MIN_CODE_POINTS:
        raise WeakPassword("too-short")
    if len(normalized) > MAX_CODE_POINTS:
        raise WeakPassword("too-long")
    folded = _fold(normalized)
    # NIST compares the entire password: a blocklisted word inside a longer phrase is fine.
    if folded in _BLOCKLIST:
        raise WeakPassword("blocklisted")
    handle_tokens = _tokens([handle])
    if _mostly_made_of(folded, handle_tokens):
        raise WeakPassword("contains-handle")
    context_tokens = handle_tokens | _tokens(context_words)
    if _mostly_made_of(folded, context_tokens):
        raise WeakPassword("contains-context")
    user_inputs = [handle, *context_words, *sorted(context_tokens)]
    if _zxcvbn_score(normalized[:ZXCVBN_MAX_CODE_POINTS], user_inputs) < MIN_ZXCVBN_SCORE:
        raise WeakPassword("too-weak")


def _fold(text: str) -> str:
    # Comparison only, never hashing: full-width or ligature forms of the org name still count.
    return unicodedata.normalize("NFKC", text).casefold()


def _tokens(words: Iterable[str]) -> frozenset[str]:
    # "alice.smith" yields "alice", "smith" and "alicesmith", so separators do not hide it.
    tokens: set[str] = set()
    for word in words:
        parts = re.findall(r"\w+", _fold(word))
        tokens.update(parts)
        tokens.add("".join(parts))
    return frozenset(t for t in tokens if len(t) >= MIN_CONTEXT_TOKEN_LENGTH)


def _mostly_made_of(folded: str, tokens: frozenset[str]) -> bool:
    if not tokens:
        return False
    pattern = re.compile("|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True)))
    remainder, found = pattern.subn("", folded)
    if not found:
        return False
    # Repeat, so that nesting ("tiptiplineline") cannot smuggle a context word through.
    while True:
        remainder, more = pattern.subn("", remainder)
        if not more:
            break
    return sum(c.isalpha() for c in remainder) < MIN_LETTERS_BEYOND_CONTEXT


def _zxcvbn_score(password: str, user_inputs: list[str]) -> int:
    with _ZXCVBN_LOCK:
        result = zxcvbn.zxcvbn(password, user_inputs=user_inputs, max_length=len(password))
    return int(result["score"])


def _peppered(pepper: bytes, password: str) -> bytes:
    # surrogatepass: a lone surrogate from JSON must hash deterministically, not crash the login.
    message = normalize(password).encode("utf-8", "surrogatepass")
    return hmac.new(pepper, message, hashlib.sha256).digest()


_T = TypeVar("_T")


class PasswordHasher:
    """Argon2id behind a semaphore, off the event loop.

    Each running hash holds 64 MiB, so `max_concurrency` is the memory budget for hashing
    divided by 64 MiB (ASVS 15.2.2, OWASP PSCS on DoS). With `max_waiting`, callers beyond that
    many queued fail fast with 429 instead of piling up behind a flood of logins.
    """

    def __init__(
        self, *, pepper: bytes, max_concurrency: int, max_waiting: int | None = None
    ) -> None:
        if len(pepper) != PEPPER_BYTES:
            raise ValueError(f"the pepper must be {PEPPER_BYTES} bytes")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_waiting is not None and max_waiting < 0:
            raise ValueError("max_waiting must not be negative")
        self._pepper = pepper
        self._argon2 = argon2.PasswordHasher.from_parameters(PARAMETERS)
        self._semaphore = asyncio.Semaphore(max_concurrency)
        # argon2 gets threads of its own at the lowest CPU priority. With p=4 lanes each, a few
        # concurrent hashes are a dozen CPU-bound threads; at normal priority they starved the
        # event loop and `GET /v1/me` p99 rose 60-200x under a login flood
        # (bench/login_load.py). At nice 19 they still use every idle cycle.
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_concurrency,
            thread_name_prefix="argon2",
            initializer=_lowest_cpu_priority,
        )
        self._max_waiting = max_waiting
        self._waiting = 0
        # Unknown handles verify against this (SEC-AUTH-09): same parameters, so same cost.
        # One argon2 run (about 0.25 s) at construction, i.e. at start-up.
        self._dummy_hash = self._argon2.hash(secrets.token_bytes(HASH_BYTES))

    async def hash(self, password: str) -> str:
        if len(normalize(password)) > MAX_CODE_POINTS:
            raise WeakPassword("too-long")
        return await self._run(self._argon2.hash, _peppered(self._pepper, password))

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True only for the right password; every failure, however odd, is a plain False.

        argon2-cffi raises on mismatch and on malformed hashes; a wrong password must become a
        401 like any other, never a 500 (security-requirements §4).
        """
        if len(normalize(password)) > MAX_CODE_POINTS:
            return False
        try:
            params = argon2.extract_parameters(stored_hash)
        except ValueError:
            return False
        if not _cost_is_bounded(params):
            # A hash costlier than ours can only come from tampering; verifying it could
            # allocate gigabytes per call and break the semaphore's memory budget.
            _log.warning("refused to verify a password hash with out-of-bounds parameters")
            return False
        secret = _peppered(self._pepper, password)
        try:
            return await self._run(self._argon2.verify, stored_hash, secret)
        except (Argon2Error, ValueError):
            return False

    async def dummy_verify(self, password: str) -> bool:
        await self.verify(self._dummy_hash, password)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        # argon2-cffi's verify() accepts $argon2i$ and $argon2d$ too: any difference from
        # PARAMETERS, including the type, means upgrade on the next successful login.
        try:
            return self._argon2.check_needs_rehash(stored_hash)
        except ValueError:
            return True

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        if (
            self._max_waiting is not None
            and self._semaphore.locked()
            and self._waiting >= self._max_waiting
        ):
            raise TooManyRequests(retry_after_s=1)
        self._waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self._waiting -= 1
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, functools.partial(fn, *args)
            )
        except BaseException:
            self._semaphore.release()
            raise
        # Release when the thread finishes, not when the caller stops waiting: a cancelled
        # request must not free a slot while its 64 MiB hash is still running.
        future.add_done_callback(self._release)
        return await asyncio.shield(future)

    def _release(self, future: asyncio.Future[Any]) -> None:
        self._semaphore.release()
        if not future.cancelled():
            future.exception()  # marks it retrieved when the awaiting caller was cancelled


def _lowest_cpu_priority() -> None:
    # Linux gives each thread its own nice value, and argon2's lane threads inherit it.
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _cost_is_bounded(params: argon2.Parameters) -> bool:
    return (
        params.memory_cost <= MEMORY_COST_KIB
        and params.time_cost <= TIME_COST
        and params.parallelism <= PARALLELISM
    )
