"""common.consumer.DurableConsumer against real NATS JetStream, on a stream of its own so no
service of the run sees these made-up events: retries with backoff, idempotency by event_id,
poison messages, metrics and the drain on stop."""

import asyncio
import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY

from tests.support import eventually
from veche.common.clients import Nats, ensure_stream
from veche.common.consumer import DurableConsumer, retry_delay
from veche.common.events import RoomEvent
from veche.common.settings import CommonSettings


def test_retry_delay_grows_from_the_base_and_stops_at_the_cap():
    assert [retry_delay(n, 0.5, 10) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]


@pytest.fixture(scope="module")
async def own_stream() -> AsyncIterator[tuple[CommonSettings, Nats]]:
    settings = CommonSettings(
        nats_stream=f"{os.environ['NATS_STREAM']}_CONSUMER",
        nats_subject_prefix=f"{os.environ['NATS_SUBJECT_PREFIX']}consumer",
    )

    async def on_connect(client) -> None:  # type: ignore[no-untyped-def]
        await ensure_stream(client, settings)

    nats = Nats(settings, on_connect=on_connect)
    nats.start()
    await asyncio.wait_for(nats.connected.wait(), 10)
    yield settings, nats
    assert nats.client is not None
    await nats.client.jetstream().delete_stream(settings.nats_stream)
    await nats.close()


class Run:
    """One DurableConsumer with a recording handler on one made-up room."""

    def __init__(self, settings: CommonSettings, nats: Nats, fail_first: int = 0, work: float = 0) -> None:
        self.settings, self.nats = settings, nats
        self.room_id = uuid.uuid4()
        self.durable = f"test-{self.room_id.hex[:12]}"
        self.calls: Counter[uuid.UUID] = Counter()
        self.fail_first = fail_first
        self.work = work
        self.started = asyncio.Event()
        self.consumer = DurableConsumer(
            nats,
            settings,
            self.durable,
            f"{settings.nats_subject_prefix}.{self.room_id}.>",
            self.handle,
            retry_base_seconds=0.05,
            retry_max_seconds=0.2,
            lag_interval=0.1,
            fetch_timeout=0.25,
        )

    async def handle(self, event: RoomEvent) -> None:
        self.calls[event.event_id] += 1
        self.started.set()
        await asyncio.sleep(self.work)
        if self.calls[event.event_id] <= self.fail_first:
            raise ConnectionError("the dependency is down")

    async def publish(self, event: RoomEvent | None = None, raw: bytes | None = None) -> RoomEvent:
        event = event or RoomEvent(type="room.created", room_id=self.room_id)
        assert self.nats.client is not None
        await self.nats.client.jetstream().publish(
            f"{self.settings.nats_subject_prefix}.{self.room_id}.{event.type}",
            raw if raw is not None else event.to_json(),
        )
        return event

    async def idle(self) -> bool:
        assert self.nats.client is not None
        try:
            info = await self.nats.client.jetstream().consumer_info(self.settings.nats_stream, self.durable)
        except NotFoundError:
            return False  # not subscribed yet
        return info.num_pending == 0 and info.num_ack_pending == 0

    def metric(self, name: str) -> float:
        return REGISTRY.get_sample_value(name, {"durable": self.durable}) or 0.0


async def test_a_failing_handler_is_retried_until_it_succeeds_then_acknowledged(own_stream):
    run = Run(*own_stream, fail_first=2)
    run.consumer.start()
    try:
        event = await run.publish()

        async def done() -> bool:
            return run.calls[event.event_id] == 3 and await run.idle()

        await eventually(done, timeout=15)
        assert run.metric("veche_consumer_failures_total") == 2
        assert run.metric("veche_consumer_processed_total") == 1

        async def lag_measured() -> bool:
            return REGISTRY.get_sample_value("veche_consumer_lag", {"durable": run.durable}) == 0

        await eventually(lag_measured, timeout=5)
    finally:
        await run.consumer.stop()
    assert run.calls[event.event_id] == 3


async def test_a_redelivered_event_id_reaches_the_handler_once(own_stream):
    run = Run(*own_stream)
    run.consumer.start()
    try:
        event = await run.publish()
        await run.publish(event)  # the same event again (no Nats-Msg-Id, so JetStream keeps both)
        other = await run.publish(RoomEvent(type="room.ended", room_id=run.room_id))

        async def done() -> bool:
            return run.calls[other.event_id] == 1 and await run.idle()

        await eventually(done, timeout=15)
    finally:
        await run.consumer.stop()
    assert run.calls == {event.event_id: 1, other.event_id: 1}


async def test_an_unreadable_message_is_dropped_and_the_rest_goes_on(own_stream):
    run = Run(*own_stream)
    run.consumer.start()
    try:
        await run.publish(raw=json.dumps({"type": "room.created"}).encode())
        await run.publish(raw=b"\xff not json")
        event = await run.publish()

        async def done() -> bool:
            return run.calls[event.event_id] == 1 and await run.idle()

        await eventually(done, timeout=15)
    finally:
        await run.consumer.stop()
    assert list(run.calls) == [event.event_id]
    assert run.metric("veche_consumer_failures_total") == 2


async def test_stop_lets_the_event_in_hand_finish_and_acknowledges_it(own_stream):
    run = Run(*own_stream, work=0.5)
    run.consumer.start()
    event = await run.publish()
    await asyncio.wait_for(run.started.wait(), 15)
    await run.consumer.stop()
    assert run.calls[event.event_id] == 1
    assert await run.idle()
    assert run.metric("veche_consumer_processed_total") == 1


async def test_a_second_consumer_on_the_same_durable_resumes_where_the_first_stopped(own_stream):
    first = Run(*own_stream)
    first.consumer.start()
    event = await first.publish()
    await eventually(lambda: _done(first, event), timeout=15)
    await first.consumer.stop()

    later = await first.publish(RoomEvent(type="room.ended", room_id=first.room_id))
    second = Run(*own_stream)
    second.room_id, second.durable = first.room_id, first.durable
    second.consumer = DurableConsumer(
        second.nats,
        second.settings,
        first.durable,
        f"{second.settings.nats_subject_prefix}.{first.room_id}.>",
        second.handle,
        fetch_timeout=0.25,
    )
    second.consumer.start()
    try:
        await eventually(lambda: _done(second, later), timeout=15)
    finally:
        await second.consumer.stop()
    assert list(second.calls) == [later.event_id]


async def _done(run: Run, event: RoomEvent) -> bool:
    return run.calls[event.event_id] == 1 and await run.idle()


async def test_a_lone_event_is_handled_without_waiting_for_a_full_batch(own_stream):
    run = Run(*own_stream)
    run.consumer = DurableConsumer(
        run.nats,
        run.settings,
        run.durable,
        f"{run.settings.nats_subject_prefix}.{run.room_id}.>",
        run.handle,
        batch=50,
        fetch_timeout=2.0,
    )
    run.consumer.start()
    try:
        await eventually(run.idle, timeout=10)  # subscribed, nothing yet
        started = asyncio.get_running_loop().time()
        event = await run.publish()
        await eventually(lambda: _done(run, event), timeout=10, interval=0.01)
        assert asyncio.get_running_loop().time() - started < 1.0  # not the 2 s fetch window
    finally:
        await run.consumer.stop()
