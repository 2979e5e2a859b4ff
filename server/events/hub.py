"""One LISTEN connection per app process, fanned out to that process's event streams.

PostgreSQL delivers a notification to every listening connection once its transaction commits,
so a report accepted by one replica reaches streams held by any other (DESIGN §6). Each stream
gets a bounded queue of event ids; a stream that cannot keep up is dropped rather than allowed
to hold up the others or grow without limit, and its client resumes with Last-Event-ID.

A lost connection drops every stream for the same reason: notifications sent while nobody was
listening are gone, and only a replay from the database (Last-Event-ID) can recover them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import asyncpg

from server.events import queries

CHANNEL: Final = "tipline_events"

_log = logging.getLogger("tipline.events")


class SubscriptionLost(Exception):
    """The stream must end: it fell behind, or the hub stopped listening."""


class Subscription:
    def __init__(self, max_pending: int) -> None:
        self._max_pending = max_pending
        # One slot more than may be pending, kept for the marker that ends the stream, so
        # dropping a full subscriber never blocks the hub.
        self._queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=max_pending + 1)
        self.lost = False

    def offer(self, event_id: int) -> bool:
        if self.lost:
            return False
        if self._queue.qsize() >= self._max_pending:
            self.lose()
            return False
        self._queue.put_nowait(event_id)
        return True

    def lose(self) -> None:
        if not self.lost:
            self.lost = True
            self._queue.put_nowait(None)

    async def get(self, timeout_s: float) -> int:
        """The next notified event id; TimeoutError when none came within `timeout_s`."""
        try:
            item = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            item = await asyncio.wait_for(self._queue.get(), timeout=max(timeout_s, 0.0))
        if item is None:
            raise SubscriptionLost
        return item


class EventHub:
    def __init__(
        self,
        dsn: str,
        *,
        max_pending: int,
        heartbeat_s: float,
        replay_batch: int,
        reconnect_delay_s: float = 1.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if max_pending < 1 or replay_batch < 1 or heartbeat_s <= 0 or reconnect_delay_s <= 0:
            raise ValueError("event hub limits must be positive")
        self._dsn = dsn
        self.max_pending = max_pending
        self.heartbeat_s = heartbeat_s
        self.replay_batch = replay_batch
        self._reconnect_delay_s = reconnect_delay_s
        self._connect_timeout_s = connect_timeout_s
        self._subscribers: set[Subscription] = set()
        self._conn: asyncpg.Connection | None = None
        self._connection_lost = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._connection_lost.is_set()

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        # Notifications are only delivered from the moment LISTEN took effect: a stream opened
        # while the hub is reconnecting would silently miss events.
        if not self.listening:
            raise SubscriptionLost
        subscription = Subscription(self.max_pending)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    async def start(self) -> None:
        """Tries to listen at once; if the database is not there yet, keeps trying in the
        background (the process still starts, and /readyz reports the database)."""
        if self._task is not None:
            raise RuntimeError("the event hub is already running")
        self._stopping.clear()
        try:
            await self._connect()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _log.warning("event listener not connected yet", extra={"error": type(exc).__name__})
            self._connection_lost.set()
        self._task = asyncio.create_task(self._supervise(), name="tipline-event-hub")

    async def stop(self) -> None:
        self._stopping.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()

    async def _connect(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout_s,
            server_settings={"application_name": "tipline-events"},
        )
        try:
            conn.add_termination_listener(self._on_termination)
            await conn.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._connection_lost.clear()
        self._conn = conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        for subscription in list(self._subscribers):
            subscription.lose()
        self._subscribers.clear()
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=self._connect_timeout_s)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if not payload.isascii() or not payload.isdigit():
            _log.warning("ignored a malformed event notification")
            return
        event_id = int(payload)
        for subscription in list(self._subscribers):
            if not subscription.offer(event_id):
                self._subscribers.discard(subscription)
                _log.info("dropped an event stream that fell behind")

    def _on_termination(self, _conn: Any) -> None:
        self._connection_lost.set()

    async def _supervise(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connection_lost.wait(), timeout=self.heartbeat_s)
            if self._stopping.is_set():
                return
            if not self._connection_lost.is_set() and await self._alive():
                continue
            _log.warning("lost the event listener connection; reconnecting")
            self._connection_lost.set()
            await self._disconnect()
            await self._reconnect()

    async def _alive(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            await asyncio.wait_for(queries.ping(conn), timeout=self._connect_timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        return True

    async def _reconnect(self) -> None:
        delay = self._reconnect_delay_s
        while not self._stopping.is_set():
            try:
                await self._connect()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                _log.warning(
                    "event listener reconnect failed; retrying",
                    extra={"error": type(exc).__name__},
                )
            else:
                _log.info("event listener reconnected")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            # Back off, but never so far that a recovered database is noticed late.
            delay = min(delay * 2, 30.0)
