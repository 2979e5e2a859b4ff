"""Live events over real HTTP and a real PostgreSQL: delivered on commit only, to the audience
row-level security allows, resumable with Last-Event-ID, across app processes, and cut off
when the session ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
import httpx
import msgspec
import pytest

from clients.reference_client.device import make_proof
from server import db
from server.events.hub import CHANNEL, EventHub, Subscription, SubscriptionLost
from server.events.kinds import EventKind
from server.events.service import publish
from server.settings import Settings
from tests.actors import Actor, World
from tests.conftest import TestDatabase, world_with
from tests.identity.test_duress import set_duress

HEARTBEAT_S = 0.25
REPLAY_BATCH = 2  # small, so a replay of a few events already spans several pages
WAIT_S = 5.0


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[World]:
    fast = msgspec.structs.replace(
        settings, events_heartbeat_s=HEARTBEAT_S, events_replay_batch=REPLAY_BATCH
    )
    async with world_with(fast) as world:
        yield world


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async with serving(settings) as world:
        yield world


class Frame(msgspec.Struct):
    comments: list[str]
    fields: dict[str, str]


class EventStream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def frame(self) -> Frame | None:
        """The next frame, or None when the server ended the stream."""
        frame = Frame(comments=[], fields={})
        while True:
            try:
                line = await asyncio.wait_for(anext(self._lines), timeout=WAIT_S)
            except StopAsyncIteration:
                return None
            if line == "":
                if frame.comments or frame.fields:
                    return frame
                continue
            if line.startswith(":"):
                frame.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            frame.fields[name] = value.removeprefix(" ")

    async def ready(self) -> list[Frame]:
        """The replayed events, up to the `ready` comment that ends the replay."""
        replayed: list[Frame] = []
        async with asyncio.timeout(WAIT_S):
            while (frame := await self.frame()) is not None:
                if "ready" in frame.comments:
                    return replayed
                replayed.append(frame)
        raise AssertionError("the stream ended before it was ready")

    async def ends_within(self, seconds: float) -> None:
        """Asserts that the server ends the stream in time, sending no event before it does."""
        try:
            async with asyncio.timeout(seconds):
                while (frame := await self.frame()) is not None:
                    assert not frame.fields, f"an ended session got event {frame.fields}"
        except TimeoutError:
            raise AssertionError(f"the stream was still open after {seconds} s") from None

    async def event(self) -> Frame:
        async with asyncio.timeout(WAIT_S):
            while (frame := await self.frame()) is not None:
                if frame.fields:
                    return frame
        raise AssertionError("the stream ended")

    async def nothing_for(self, heartbeats: int = 2) -> None:
        """Asserts that only heartbeats arrive: a notification queued before a heartbeat is
        handled before it, so an event already fanned out would show up within two (the first
        may have been on its way already)."""
        seen = 0
        while seen < heartbeats:
            frame = await self.frame()
            assert frame is not None, "the stream ended"
            assert not frame.fields, f"unexpected event {frame.fields}"
            seen += "heartbeat" in frame.comments


def headers_for(actor: Actor, base_url: str, session: str | None = None) -> dict[str, str]:
    token = session or actor.token().access_token
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": make_proof(
            actor.device,
            "GET",
            base_url + "/v1/events",
            access_token=token,
            now=time.time(),
        ),
        "Accept": "text/event-stream",
    }


@asynccontextmanager
async def subscribed(
    actor: Actor,
    *,
    base_url: str | None = None,
    session: str | None = None,
    last_event_id: str | None = None,
) -> AsyncIterator[EventStream]:
    base = base_url or actor.world.base_url
    headers = headers_for(actor, base, session)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with (
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(WAIT_S, read=None)) as http,
        http.stream("GET", "/v1/events", headers=headers) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        yield EventStream(response)


def pool_of(world: World) -> db.Pool:
    pool: db.Pool = world.app.state.pool
    return pool


async def emit(
    pool: db.Pool,
    by: Actor,
    kind: EventKind = EventKind.REPORT_RECEIVED,
    *,
    to_account: UUID | None = None,
    to_role: str | None = None,
) -> int:
    """Publishes in by's RLS context, as a route acting for by would; commits on return."""
    async with db.transaction(pool, account_id=by.account_id, role=by.role) as conn:
        return await publish(
            conn,
            kind,
            subject_id=uuid.uuid4(),
            report_id=uuid.uuid4(),
            audience_account=to_account,
            audience_role=None if to_account else (to_role or "investigator"),
        )


class _RollBack(Exception):
    pass


async def publish_then_roll_back(pool: db.Pool, by: Actor) -> None:
    with contextlib.suppress(_RollBack):
        async with db.transaction(pool, account_id=by.account_id, role=by.role) as conn:
            await publish(
                conn,
                EventKind.REPORT_RECEIVED,
                subject_id=uuid.uuid4(),
                report_id=uuid.uuid4(),
                audience_role="investigator",
            )
            raise _RollBack


def event_id(frame: Frame) -> int:
    return int(frame.fields["id"])


async def test_an_event_is_delivered_on_commit_and_never_after_a_rollback(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    pool = pool_of(world)
    async with subscribed(investigator) as stream:
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-store"
        assert await stream.ready() == []

        await publish_then_roll_back(pool, operative)

        subject, report = uuid.uuid4(), uuid.uuid4()
        async with db.transaction(pool, account_id=operative.account_id, role="operative") as conn:
            committed = await publish(
                conn,
                EventKind.REPORT_RECEIVED,
                subject_id=subject,
                report_id=report,
                audience_role="investigator",
            )
            # Not before commit: the notification waits for the transaction.
            await asyncio.sleep(HEARTBEAT_S * 2)

        frame = await stream.event()
        # The rolled-back event came first; had it leaked, it would be this frame.
        assert event_id(frame) == committed
        assert frame.fields["event"] == "report.received"
        assert json.loads(frame.fields["data"]) == {
            "id": committed,
            "kind": "report.received",
            "subject_id": str(subject),
            "report_id": str(report),
        }
        await stream.nothing_for()


async def test_each_subscriber_gets_only_what_row_level_security_lets_it_see(
    world: World,
) -> None:
    investigator = await world.first_investigator()
    mine = await world.invited(investigator, "operative")
    other = await world.invited(investigator, "operative")
    coerced = await world.invited(investigator, "operative")
    duress = await set_duress(coerced)
    world.next_step()
    response = await coerced.client.login_response(coerced.handle, duress, coerced.totp())
    assert response.status_code == 201
    duress_token = response.json()["access_token"]
    pool = pool_of(world)

    async with (
        subscribed(investigator) as team_stream,
        subscribed(mine) as mine_stream,
        subscribed(other) as other_stream,
        subscribed(coerced, session=duress_token) as duress_stream,
    ):
        for stream in (team_stream, mine_stream, other_stream, duress_stream):
            assert await stream.ready() == []
        to_mine = await emit(
            pool, investigator, EventKind.REPORT_STATUS_CHANGED, to_account=mine.account_id
        )
        await emit(pool, investigator, EventKind.MESSAGE_RECEIVED, to_account=coerced.account_id)
        await emit(pool, investigator, to_role="officer")
        to_team = await emit(pool, mine, EventKind.REPORT_RECEIVED, to_role="investigator")

        assert event_id(await mine_stream.event()) == to_mine
        # Notifications reach the hub in commit order, so once the last one is delivered every
        # earlier one has been fanned out to every stream; the team saw nothing before it.
        assert event_id(await team_stream.event()) == to_team
        for stream in (mine_stream, team_stream, other_stream, duress_stream):
            await stream.nothing_for()


async def test_publishing_is_limited_by_row_level_security(
    world: World, database: TestDatabase
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    other = await world.invited(investigator, "operative")
    pool = pool_of(world)
    # An operative may tell the investigators or itself, never another operative.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await emit(pool, operative, to_account=other.account_id)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await emit(pool, operative, to_role="operative")
    # Nobody publishes without an account: not an anonymous or service context.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with db.transaction(pool, role="authenticator") as conn:
            await publish(
                conn,
                EventKind.REPORT_RECEIVED,
                subject_id=uuid.uuid4(),
                report_id=uuid.uuid4(),
                audience_role="investigator",
            )
    # A duress session looks as if it published, and nothing is stored.
    async with db.transaction(
        pool, account_id=operative.account_id, role="operative", duress=True
    ) as conn:
        ghost = await publish(
            conn,
            EventKind.REPORT_RECEIVED,
            subject_id=uuid.uuid4(),
            report_id=uuid.uuid4(),
            audience_role="investigator",
        )
    assert ghost > 0
    admin = await asyncpg.connect(database.admin_url)
    try:
        assert await admin.fetchval("SELECT count(*) FROM tipline.events WHERE id = $1", ghost) == 0
    finally:
        await admin.close()
    async with db.transaction(pool, account_id=investigator.account_id, role="investigator") as c:
        with pytest.raises(ValueError, match="exactly one"):
            await publish(
                c,
                EventKind.REPORT_RECEIVED,
                subject_id=uuid.uuid4(),
                report_id=uuid.uuid4(),
                audience_account=operative.account_id,
                audience_role="investigator",
            )


async def test_last_event_id_replays_exactly_the_missed_events(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    pool = pool_of(world)
    seen = [await emit(pool, operative) for _ in range(2)]
    missed = []
    for n in range(5):
        missed.append(await emit(pool, operative))
        if n == 2:
            # Not the investigators': skipped by the replay, not counted against its pages.
            await emit(pool, investigator, to_account=operative.account_id)

    async with subscribed(investigator, last_event_id=str(seen[-1])) as stream:
        replayed = await stream.ready()
        assert [event_id(f) for f in replayed] == missed
        assert {f.fields["event"] for f in replayed} == {"report.received"}
        live = await emit(pool, operative)
        assert event_id(await stream.event()) == live

    async with subscribed(investigator, last_event_id=str(live)) as stream:
        assert await stream.ready() == []


async def test_events_published_during_the_replay_arrive_once_and_in_order(
    world: World,
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    pool = pool_of(world)
    start = await emit(pool, operative)
    published: list[int] = []

    async def publisher() -> None:
        for _ in range(15):
            published.append(await emit(pool, operative))

    # Three concurrent publishers and a subscriber resuming while they run: whatever commits
    # before, during or after the replay arrives exactly once, in id order.
    tasks = [asyncio.create_task(publisher()) for _ in range(3)]
    received: list[int] = []
    async with subscribed(investigator, last_event_id=str(start)) as stream:
        received += [event_id(f) for f in await stream.ready()]
        await asyncio.gather(*tasks)
        while len(received) < len(published):
            received.append(event_id(await stream.event()))
        await stream.nothing_for()
    assert received == sorted(published)


async def test_event_ids_follow_commit_order_so_a_resume_never_skips_one(
    world: World,
) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    pool = pool_of(world)
    async with subscribed(investigator) as stream:
        assert await stream.ready() == []
        async with db.transaction(pool, account_id=operative.account_id, role="operative") as conn:
            first = await publish(
                conn,
                EventKind.REPORT_RECEIVED,
                subject_id=uuid.uuid4(),
                report_id=uuid.uuid4(),
                audience_role="investigator",
            )
            second = asyncio.create_task(emit(pool, operative))
            await asyncio.sleep(HEARTBEAT_S * 2)
            # Had the second event committed first, a client holding its id would resume
            # past the first, which commits later, and never see it.
            assert not second.done()
        assert first < await second
        assert [event_id(await stream.event()), event_id(await stream.event())] == [
            first,
            await second,
        ]


async def test_an_event_committed_through_one_app_process_reaches_a_stream_on_another(
    settings: Settings,
) -> None:
    async with serving(settings) as first, serving(settings) as second:
        # Replicas share one (NTP) time; here, the tests' clock, which enrolment moves on.
        second.identity.totp_clock = first.clock
        investigator = await first.first_investigator()
        operative = await first.invited(investigator, "operative")
        async with subscribed(investigator, base_url=second.base_url) as stream:
            assert await stream.ready() == []
            published = await emit(pool_of(first), operative)
            frame = await stream.event()
        assert event_id(frame) == published
        hub: EventHub = second.app.state.events
        assert hub.listening


async def test_logging_out_ends_the_stream_within_a_heartbeat(world: World) -> None:
    investigator = await world.first_investigator()
    operative = await world.invited(investigator, "operative")
    pool = pool_of(world)
    async with subscribed(investigator) as stream:
        assert await stream.ready() == []
        await investigator.client.logout(investigator.token())
        after_logout = await emit(pool, operative)
        await stream.ends_within(HEARTBEAT_S * 3)
    assert after_logout


async def test_a_revoked_device_stops_the_stream(world: World) -> None:
    investigator = await world.first_investigator()
    async with subscribed(investigator) as stream:
        assert await stream.ready() == []
        device = investigator.token().device_id
        revoked = await investigator.client.call(
            "POST", f"/v1/devices/{device}/revoke", investigator.token()
        )
        assert revoked.is_success
        await stream.ends_within(HEARTBEAT_S * 3)


async def test_a_malformed_last_event_id_is_refused(world: World) -> None:
    investigator = await world.first_investigator()
    async with httpx.AsyncClient(base_url=world.base_url, timeout=WAIT_S) as http:
        for value in ["abc", "-1", "12a", "1.5", "0x10", "9" * 20, ""]:
            headers = headers_for(investigator, world.base_url)
            headers["Last-Event-ID"] = value
            response = await http.get("/v1/events", headers=headers)
            assert response.status_code == 400, value
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["type"].endswith(":bad-request")


async def test_the_stream_needs_a_session(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=WAIT_S) as http:
        response = await http.get("/v1/events")
    assert response.status_code == 401


@pytest.fixture
async def hub(database: TestDatabase) -> AsyncIterator[EventHub]:
    hub = EventHub(
        database.app_url,
        max_pending=2,
        heartbeat_s=HEARTBEAT_S,
        replay_batch=REPLAY_BATCH,
        reconnect_delay_s=0.05,
    )
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


async def notify(database: TestDatabase, *payloads: str) -> None:
    conn = await asyncpg.connect(database.admin_url)
    try:
        for payload in payloads:
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
    finally:
        await conn.close()


async def test_a_subscriber_that_falls_behind_is_dropped_without_holding_up_others(
    hub: EventHub, database: TestDatabase
) -> None:
    slow, fast = hub.subscribe(), hub.subscribe()
    received = []
    for n in (1, 2, 3):
        await notify(database, str(n))
        received.append(await fast.get(WAIT_S))
    assert received == [1, 2, 3]
    assert [await slow.get(0), await slow.get(0)] == [1, 2]
    with pytest.raises(SubscriptionLost):
        await slow.get(0)
    assert hub.subscriber_count == 1
    # A malformed payload is ignored, not delivered or fatal.
    await notify(database, "drop table", "4")
    assert await fast.get(WAIT_S) == 4


async def test_the_hub_reconnects_and_ends_streams_that_may_have_missed_events(
    hub: EventHub, database: TestDatabase
) -> None:
    before = hub.subscribe()
    admin = await asyncpg.connect(database.admin_url)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'tipline-events' AND datname = current_database()"
        )
        assert killed == 1
    finally:
        await admin.close()
    with pytest.raises(SubscriptionLost):
        await before.get(WAIT_S)

    deadline = time.monotonic() + WAIT_S
    after: Subscription | None = None
    while after is None:
        assert time.monotonic() < deadline, "the hub did not reconnect"
        try:
            after = hub.subscribe()
        except SubscriptionLost:
            await asyncio.sleep(0.02)
    await notify(database, "7")
    assert await after.get(WAIT_S) == 7
