"""Several janitors at once, and janitors that die: each room ends once, no event is lost."""

import asyncio
import os
import signal

import httpx
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests.janitor.support import (
    ROOM_EMPTY_TTL_SECONDS,
    consumer_state,
    create_room,
    room_keys,
    room_row,
)
from tests.support import EventReader, eventually, hdr

SOLO = {"JANITOR_SWEEP_INTERVAL_SECONDS": "60"}  # tests of the consumer alone


def done_marker(durable: str, event_id: str) -> str:
    return f"janitor:{durable}:event:{event_id}"


async def ended_event_ids(room_ids: list[str]) -> list[str]:
    """The event_id of each room's room.ended, in the order of room_ids."""
    ids = []
    async with EventReader() as reader:
        for room_id in room_ids:
            events = await reader.read_room(room_id, expected=4)
            ids += [b["event_id"] for _, _, b in events if b["type"] == "room.ended"]
    assert len(ids) == len(room_ids)
    return ids


async def ended_rooms(js, durable: str, api: httpx.AsyncClient, count: int, ack_wait: float) -> list[str]:
    """`count` rooms, made and then ended, whose room.ended events are the only pending work of
    the janitors' durable (existing_consumer)."""
    made = [await create_room(api, f"Ending {i}") for i in range(count)]
    await existing_consumer(js, durable, ack_wait, [room_id for room_id, _, _ in made])
    for room_id, host, _ in made:
        response = await api.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(host))
        assert response.status_code == 200, response.text
    return [room_id for room_id, _, _ in made]


async def caught_up(js, durable: str, timeout: float = 30) -> None:
    async def check():
        return await consumer_state(js, durable) == (0, 0)

    await eventually(check, timeout=timeout, interval=0.1)


async def all_published(js, durable: str, count: int) -> None:
    async def check():
        return await consumer_state(js, durable) == (count, 0)

    await eventually(check, timeout=10, interval=0.05)


async def existing_consumer(js, durable: str, ack_wait: float, room_ids: list[str]) -> None:
    """The janitors' durable as an earlier deployment left it: caught up with the stream, so
    the events that follow are all its pending work, and the next janitor fetches them at once.
    It takes only the room.ended events of these rooms: this package's janitors end the rooms
    the rest of the run left behind meanwhile, and their events must not count here."""
    prefix = os.environ["NATS_SUBJECT_PREFIX"]
    await js.add_consumer(
        os.environ["NATS_STREAM"],
        ConsumerConfig(
            name=durable,
            durable_name=durable,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=ack_wait,
            filter_subjects=[f"{prefix}.{room_id}.room.ended" for room_id in room_ids],
        ),
    )


async def test_janitor_answers_its_probes_and_exposes_its_metrics(jstack):
    port = jstack.janitors[0].port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["consumer"] == "ok"
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    for name in (
        "veche_janitor_rooms_expired_total",
        "veche_janitor_participants_timed_out_total",
        "veche_janitor_keys_deleted_total",
        "veche_janitor_events_processed_total",
        "veche_janitor_consumer_lag",
    ):
        assert name in metrics.text


async def test_two_janitors_expire_each_room_exactly_once(jstack, rooms_api, jdb):
    count = 8
    rooms = [await create_room(rooms_api, f"Race {i}") for i in range(count)]
    # Every room empties at once, so both janitors find all of them due in the same sweeps.
    await asyncio.gather(
        *(rooms_api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(host)) for room_id, host, _ in rooms)
    )
    # At the deadline, direct expire requests race the two janitors for half of the rooms.
    await asyncio.sleep(ROOM_EMPTY_TTL_SECONDS)
    raced = rooms[::2]
    direct = await asyncio.gather(
        *(rooms_api.post(f"/internal/v1/rooms/{room_id}/expire") for room_id, _, _ in raced for _ in range(3))
    )
    answers = [response.json()["ended"] for response in direct]
    for i in range(len(raced)):
        assert sum(answers[3 * i : 3 * i + 3]) <= 1  # the endpoint ends a room at most once

    async def all_ended():
        rows = [await room_row(jdb, room_id) for room_id, _, _ in rooms]
        return all(row["status"] == "ended" for row in rows)

    await eventually(all_ended, timeout=15)
    await asyncio.sleep(1.0)  # any second ending would be published by now

    # Whichever janitor ended a room (this package's two, or another stack's of the same run
    # that swept the same database), it was ended exactly once.
    async with EventReader() as reader:
        for room_id, _, _ in rooms:
            events = await reader.read_room(room_id, expected=4)
            assert [b["type"] for _, _, b in events].count("room.ended") == 1, room_id


async def test_a_janitor_killed_mid_stream_loses_no_event(jstack, rooms_api, redis_client, js):
    durable = f"janitor-{os.environ['NATS_STREAM']}-kill"
    room_ids = await ended_rooms(js, durable, rooms_api, 5, ack_wait=4)
    await all_published(js, durable, len(room_ids))
    slow = {**SOLO, "JANITOR_CLEANUP_GRACE_SECONDS": "2", "JANITOR_ACK_WAIT_SECONDS": "4"}
    first = jstack.start_janitor("janitor-killed", durable, **slow)

    async def all_in_hand():
        return await consumer_state(js, durable) == (0, len(room_ids))

    await eventually(all_in_hand, timeout=30, interval=0.02)
    jstack.runner.stop_process(first, signal.SIGKILL)
    # Killed between its two passes: nothing acknowledged, nothing marked done.
    assert await consumer_state(js, durable) == (0, len(room_ids))
    event_ids = await ended_event_ids(room_ids)
    assert not any([await redis_client.exists(done_marker(durable, e)) for e in event_ids])

    # Chat writes a last message after the other janitors have cleaned up: only a redelivery
    # to the restarted janitor can remove it now.
    async def fixture_janitors_done():
        markers = [await redis_client.exists(done_marker(jstack.durable, e)) for e in event_ids]
        return all(markers)

    await eventually(fixture_janitors_done, timeout=15)
    for room_id in room_ids:
        await redis_client.zadd(f"chat:room:{{{room_id}}}:messages", {'{"late": true}': 1})

    second = jstack.start_janitor("janitor-restarted", durable, **slow)
    await asyncio.to_thread(jstack.wait_ready, [second])
    await caught_up(js, durable, timeout=30)
    assert all([await redis_client.exists(done_marker(durable, e)) for e in event_ids])
    for room_id in room_ids:
        assert await room_keys(redis_client, room_id) == []
    metrics = await jstack.metrics(second)
    assert metrics["veche_janitor_events_processed_total"] >= len(room_ids)
    jstack.runner.stop_process(second)


async def test_sigterm_drains_the_consumer_before_the_janitor_exits(jstack, rooms_api, redis_client, js):
    durable = f"janitor-{os.environ['NATS_STREAM']}-term"
    # An ack wait far longer than the test: only the janitor's own acks can empty the consumer.
    room_ids = await ended_rooms(js, durable, rooms_api, 3, ack_wait=60)
    await all_published(js, durable, len(room_ids))
    slow = {**SOLO, "JANITOR_CLEANUP_GRACE_SECONDS": "2", "JANITOR_ACK_WAIT_SECONDS": "60"}
    janitor = jstack.start_janitor("janitor-terminated", durable, **slow)

    async def all_in_hand():
        return await consumer_state(js, durable) == (0, len(room_ids))

    await eventually(all_in_hand, timeout=30, interval=0.02)
    await asyncio.to_thread(jstack.runner.stop_process, janitor, signal.SIGTERM, 20)
    assert janitor.popen is not None and janitor.popen.returncode in (0, -signal.SIGTERM)

    assert await consumer_state(js, durable) == (0, 0)
    event_ids = await ended_event_ids(room_ids)
    assert all([await redis_client.exists(done_marker(durable, e)) for e in event_ids])


async def test_a_burst_of_ended_rooms_is_cleaned_at_once_not_batch_by_batch(
    jstack, rooms_api, redis_client, js
):
    """The grace period runs beside the other events: 12 ended rooms, taken 3 at a time, take
    about one grace period to clean, where waiting out each batch's grace would take four."""
    durable = f"janitor-{os.environ['NATS_STREAM']}-burst"
    room_ids = await ended_rooms(js, durable, rooms_api, 12, ack_wait=30)
    await all_published(js, durable, len(room_ids))
    grace = 2.0
    settings = {
        **SOLO,
        "JANITOR_CLEANUP_GRACE_SECONDS": str(grace),
        "JANITOR_ACK_WAIT_SECONDS": "30",
        "JANITOR_MAX_IN_FLIGHT": "3",
    }
    janitor = jstack.start_janitor("janitor-burst", durable, **settings)
    try:
        await asyncio.to_thread(jstack.wait_ready, [janitor])
        started = asyncio.get_running_loop().time()
        await caught_up(js, durable, timeout=30)
        took = asyncio.get_running_loop().time() - started
        event_ids = await ended_event_ids(room_ids)
        assert all([await redis_client.exists(done_marker(durable, e)) for e in event_ids])
        assert took < 3 * grace, f"the burst took {took:.1f} s: cleaned batch by batch"
    finally:
        jstack.runner.stop_process(janitor)
