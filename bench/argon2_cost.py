"""What one password check costs: Tipline's argon2id parameters against the OWASP minimum.

Run from the repository root: `.venv/bin/python bench/argon2_cost.py` (about 30 s on an idle
2-core machine).

Both parameter sets are measured in the same run, interleaved round by round (A B, B A, ...),
so machine noise hits both alike. For each, hash and verify are timed N times; the table gives
the median with min..max of wall time and of process CPU time (argon2 runs its p lanes on
threads, so CPU can exceed wall). Throughput is given two ways: one core (1 / CPU time per
verify), and the whole machine with `--threads` verifies running at once, which is what sizes
the login semaphore (security-requirements §2: concurrency = RAM budget / m).

The secret hashed is a 32-byte HMAC-SHA-256 output, as `server.identity.passwords` feeds
argon2 after peppering; the HMAC itself costs microseconds and is left out.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import version

import argon2

from server.identity.passwords import PARAMETERS

OWASP_MINIMUM = argon2.Parameters(
    type=argon2.Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19456,
    parallelism=1,
)
SECRET = hmac.new(b"\x00" * 32, b"purple lanterns drift over quiet harbours", hashlib.sha256)


@dataclass
class Profile:
    name: str
    parameters: argon2.Parameters
    hasher: argon2.PasswordHasher = field(init=False)
    stored: str = field(init=False)
    samples: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {"hash": [], "verify": []}
    )
    parallel_rates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hasher = argon2.PasswordHasher.from_parameters(self.parameters)
        self.stored = self.hasher.hash(SECRET.digest())

    def hash_once(self) -> None:
        self.hasher.hash(SECRET.digest())

    def verify_once(self) -> None:
        self.hasher.verify(self.stored, SECRET.digest())


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def parallel_rate(profile: Profile, threads: int, per_thread: int) -> float:
    def work() -> None:
        for _ in range(per_thread):
            profile.verify_once()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        start = time.perf_counter()
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()
        return threads * per_thread / (time.perf_counter() - start)


def ms(values: Sequence[float]) -> str:
    return (
        f"{statistics.median(values) * 1e3:7.1f} ({min(values) * 1e3:.1f}..{max(values) * 1e3:.1f})"
    )


def describe(parameters: argon2.Parameters) -> str:
    return (
        f"{parameters.type.name.lower()} m={parameters.memory_cost} t={parameters.time_cost} "
        f"p={parameters.parallelism}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="timed hashes and verifies each")
    parser.add_argument("--threads", type=int, default=2, help="verifiers for machine rate")
    parser.add_argument("--per-thread", type=int, default=8, help="verifies per thread, per run")
    parser.add_argument("--parallel-runs", type=int, default=3, help="machine-rate runs each")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    profiles = [
        Profile("tipline (RFC 9106 2nd)", PARAMETERS),
        Profile("OWASP minimum", OWASP_MINIMUM),
    ]
    for profile in profiles:  # warm-up: first-touch page faults of the 64 MiB arena
        profile.verify_once()

    for round_ in range(args.rounds):
        for profile in profiles if round_ % 2 == 0 else reversed(profiles):
            profile.samples["hash"].append(timed(profile.hash_once))
            profile.samples["verify"].append(timed(profile.verify_once))
    for run in range(args.parallel_runs):
        for profile in profiles if run % 2 == 0 else reversed(profiles):
            profile.parallel_rates.append(parallel_rate(profile, args.threads, args.per_thread))

    print(
        f"argon2-cffi {version('argon2-cffi')}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    # Wall times only mean something on an otherwise idle machine; CPU times hold up better.
    print(f"load average (1 min) before: {load_before[0]:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(
        f"{args.rounds} rounds, interleaved; machine rate: {args.threads} threads x "
        f"{args.per_thread} verifies, median of {args.parallel_runs} runs"
    )
    print()
    print(
        "| parameters | op | wall ms median (min..max) | CPU ms median (min..max) "
        f"| verifies/s, 1 core | verifies/s, machine ({args.threads} threads) |"
    )
    print("|---|---|---|---|---|---|")
    for profile in profiles:
        for op, samples in profile.samples.items():
            walls = [wall for wall, _ in samples]
            cpus = [cpu for _, cpu in samples]
            one_core = machine = ""
            if op == "verify":
                one_core = f"{1 / statistics.median(cpus):.1f}"
                machine = (
                    f"{statistics.median(profile.parallel_rates):.1f} "
                    f"({min(profile.parallel_rates):.1f}..{max(profile.parallel_rates):.1f})"
                )
            print(
                f"| {profile.name}: {describe(profile.parameters)} | {op} | {ms(walls)} "
                f"| {ms(cpus)} | {one_core} | {machine} |"
            )
    tipline, owasp = (statistics.median(c for _, c in p.samples["verify"]) for p in profiles)
    print()
    print(f"CPU cost of one verify, tipline / OWASP minimum: {tipline / owasp:.2f}x")
    print(
        f"memory per running hash: {PARAMETERS.memory_cost // 1024} MiB vs "
        f"{OWASP_MINIMUM.memory_cost // 1024} MiB"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
