"""Background work that runs every few seconds in each app process (sealing, sweeping).

A pass that fails is logged and tried again next time: a database failover must not stop the
audit sealer or the sweeper for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

_log = logging.getLogger("tipline.tasks")


class Periodic:
    def __init__(self, name: str, interval_s: float, work: Callable[[], Awaitable[object]]) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.name = name
        self._interval_s = interval_s
        self._work = work
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name=f"tipline-{self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(task, timeout=self._interval_s + 5)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._pass()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def _pass(self) -> None:
        try:
            await self._work()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # A failover or restart of PostgreSQL: the work is still there next pass.
            _log.warning("%s failed; retrying", self.name, extra={"error": type(exc).__name__})
        except Exception:
            # Anything else is a bug, but the task must keep running.
            _log.exception("%s failed unexpectedly; retrying", self.name)
