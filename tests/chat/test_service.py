"""The chat use cases and the store against the real Redis, without HTTP: id order across
writers, the room head, TTLs, and system messages posted once per event."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from veche.chat.schemas import StoredMessage, created_at_of
from veche.chat.service import Caller, ChatService
from veche.chat.store import head_key
from veche.common import keys
from veche.common.events import PublicParticipant, RoomEvent
from veche.common.ids import timestamp_ms
from veche.common.timefmt import utcnow


def member(name: str = "Anna", role: str = "participant") -> PublicParticipant:
    return PublicParticipant(id=uuid.uuid4(), display_name=name, role=role, joined_at=utcnow())


def caller_in(room_id: UUID, name: str = "Anna") -> Caller:
    return Caller(room_id, str(uuid.uuid4()), member(name))


def stored(room_id: UUID, message_id: UUID, content: str) -> StoredMessage:
    """A user message as the store keeps it, written directly (no sender)."""
    return StoredMessage(
        id=message_id,
        room_id=room_id,
        participant_id=None,
        sender_id=None,
        display_name="x",
        message_type="user",
        content=content,
        created_at=created_at_of(message_id),
    )


@pytest.fixture(scope="module")
async def services(chat_app) -> AsyncIterator[list[ChatService]]:
    """Two chat apps: two replicas' worth of services, each with its own Redis connections."""
    async with chat_app() as first, chat_app() as second:
        yield [first.app.state.ctx.service, second.app.state.ctx.service]


class ChannelTap:
    """Everything published on a room's channel, in publish order."""

    def __init__(self, redis: Any, room_id: UUID) -> None:
        self.pubsub = redis.pubsub()
        self.room_id = room_id
        self.envelopes: list[dict[str, Any]] = []

    async def __aenter__(self) -> "ChannelTap":
        await self.pubsub.subscribe(keys.chat_channel(self.room_id))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pubsub.aclose()

    async def collect(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.envelopes) < count and time.monotonic() < deadline:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message:
                self.envelopes.append(json.loads(message["data"]))
        return self.envelopes

    def frames(self, kind: str) -> list[dict[str, Any]]:
        return [e["frame"] for e in self.envelopes if e["frame"]["type"] == kind]


async def test_concurrent_writers_store_and_publish_in_id_order(services, redis_client):
    room_id = uuid.uuid4()
    writers = [caller_in(room_id, f"writer {i}") for i in range(4)]
    async with ChannelTap(redis_client, room_id) as tap:
        posted = await asyncio.gather(*(services[i % 2].post(writers[i % 4], f"m{i}") for i in range(120)))
        envelopes = await tap.collect(120)
    published = [UUID(e["message_id"]) for e in envelopes]
    assert len(published) == 120
    assert published == sorted(published, key=lambda u: u.int)  # live order = id order
    stored = await services[0].store.page(room_id, limit=200, after=UUID(int=0x7 << 76))
    assert [m.id for m in stored] == published  # storage order = live order
    assert {m.id for m in posted} == set(published)


async def test_a_writer_whose_clock_is_behind_still_writes_above_the_room_head(services):
    room_id = uuid.uuid4()
    service = services[0]
    ahead_ms = time.time_ns() // 1_000_000 + 60_000
    ahead_id = UUID(int=(ahead_ms << 80) | (0x7 << 76) | (0b10 << 62))
    # Another replica whose clock runs a minute ahead wrote this one.
    foreign = stored(room_id, ahead_id, "from the future")
    assert (await service.store.append(foreign, [])).written
    mine = await service.post(caller_in(room_id), "from now")
    assert mine.id.int > ahead_id.int
    assert [m.id for m in await service.store.page(room_id, limit=10, after=ahead_id)] == [mine.id]


async def test_message_and_head_keys_expire_with_chat_ttl_seconds(chat_app):
    async with chat_app(chat_ttl_seconds=2) as chat:
        service: ChatService = chat.app.state.ctx.service
        room_id = uuid.uuid4()
        await service.post(caller_in(room_id), "short-lived")
        redis = service.store.redis
        for key in (keys.chat_messages(room_id), head_key(room_id)):
            assert 0 < await redis.pttl(key) <= 2000


async def test_find_reaches_a_message_through_the_time_in_its_id(services):
    room_id = uuid.uuid4()
    service = services[0]
    messages = [await service.post(caller_in(room_id), f"m{i}") for i in range(5)]
    for message in messages:
        found = await service.store.find(room_id, message.id)
        assert found is not None and found[1].id == message.id
        assert found[0].startswith(f'{{"id":"{message.id}"')
        assert timestamp_ms(message.id) == int(message.created_at.timestamp() * 1000)


def joined(room_id: UUID, participant: PublicParticipant, **fields: Any) -> RoomEvent:
    return RoomEvent(type="participant.joined", room_id=room_id, participant=participant, **fields)


async def test_an_event_delivered_many_times_to_two_replicas_posts_once(services, redis_client):
    room_id = uuid.uuid4()
    event = joined(room_id, member("Anna"))
    async with ChannelTap(redis_client, room_id) as tap:
        await asyncio.gather(*(services[i % 2].on_room_event(event) for i in range(10)))
        await tap.collect(3, timeout=1)
    history = await services[0].store.page(room_id, limit=50)
    assert [(m.message_type, m.content, m.sender_id) for m in history] == [("system", "Anna joined", None)]
    assert len(tap.frames("participant.joined")) == 1
    assert len(tap.frames("message.created")) == 1


async def test_system_messages_of_leaves_and_kicks_and_their_frames(services, redis_client):
    room_id = uuid.uuid4()
    anna, bob = member("Anna"), member("Bob")
    async with ChannelTap(redis_client, room_id) as tap:
        await services[0].on_room_event(
            RoomEvent(type="participant.left", room_id=room_id, participant=anna, reason="left")
        )
        await services[0].on_room_event(
            RoomEvent(type="participant.left", room_id=room_id, participant=bob, reason="kicked")
        )
        envelopes = await tap.collect(4)
    assert [m.content for m in await services[0].store.page(room_id, limit=10)] == [
        "Anna left",
        "Bob was removed by the host",
    ]
    closes = [e["close"] for e in envelopes if e["frame"]["type"] == "participant.left"]
    assert closes == [{"code": 4403, "only": str(anna.id)}, {"code": 4403, "only": str(bob.id)}]


async def test_ending_a_room_publishes_room_ended_once_and_no_system_messages(services, redis_client):
    room_id = uuid.uuid4()
    left = RoomEvent(type="participant.left", room_id=room_id, participant=member(), reason="room_ended")
    ended = RoomEvent(type="room.ended", room_id=room_id)
    # What rooms writes when it ends a room (before the event is published).
    await redis_client.hset(keys.room_participants(room_id), keys.ROOM_STATUS_FIELD, "ended")
    async with ChannelTap(redis_client, room_id) as tap:
        await services[0].on_room_event(left)
        await asyncio.gather(*(s.on_room_event(ended) for s in services * 3))
        envelopes = await tap.collect(3, timeout=1)
    assert envelopes == [{"frame": {"type": "room.ended"}, "close": {"code": 4410, "only": None}}]
    assert await services[0].store.page(room_id, limit=10) == []


async def test_events_older_than_the_max_age_post_nothing(services):
    room_id = uuid.uuid4()
    max_age = services[0].settings.chat_event_max_age_seconds
    stale = joined(room_id, member(), occurred_at=utcnow() - timedelta(seconds=max_age + 5))
    await services[0].on_room_event(stale)
    assert await services[0].store.page(room_id, limit=10) == []


async def test_a_room_ended_event_for_a_room_rooms_keeps_active_publishes_nothing(services, redis_client):
    room_id = uuid.uuid4()
    await redis_client.hset(keys.room_participants(room_id), keys.ROOM_STATUS_FIELD, "active")
    async with ChannelTap(redis_client, room_id) as tap:
        await services[0].on_room_event(RoomEvent(type="room.ended", room_id=room_id))
        envelopes = await tap.collect(1, timeout=1)
    assert envelopes == []


async def test_an_append_run_twice_stores_and_publishes_the_message_once(services, redis_client):
    """A call retried after its connection broke may have run already: the second run finds
    the message stored and writes and publishes nothing."""
    room_id = uuid.uuid4()
    store = services[0].store
    message_id = uuid.UUID(int=((time.time_ns() // 1_000_000) << 80) | (0x7 << 76) | (0b10 << 62))
    message = stored(room_id, message_id, "once")
    envelope = json.dumps({"frame": {"type": "message.created"}, "message_id": str(message_id)})
    async with ChannelTap(redis_client, room_id) as tap:
        assert (await store.append(message, [envelope])).written
        again = await store.append(message, [envelope])
        assert again.written and not again.duplicate
        published = await tap.collect(2, timeout=1.5)
    assert len(published) == 1
    assert [m.id for m in await store.page(room_id, limit=10)] == [message_id]
