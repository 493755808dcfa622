"""A chat write that reaches Redis after its caller stopped waiting writes nothing.

A Redis of the test's own is frozen (SIGSTOP) while a post or an edit sits in its socket: the
caller's read times out (the service answers 503), and when Redis runs again the write must not
land and must not be delivered, or a member would see a message whose author was told it
failed. A short freeze, well inside the write's window, still writes and delivers it."""

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeout

from tests.chat.conftest import chat_settings
from tests.support.own_redis import OwnRedis
from veche.chat.schemas import StoredMessage, created_at_of
from veche.chat.store import ChatStore
from veche.common import keys
from veche.common.clients import create_redis
from veche.common.ids import uuid7

TIMEOUT = 1.0


def message(room_id: uuid.UUID, content: str) -> StoredMessage:
    message_id = uuid7()
    return StoredMessage(
        id=message_id,
        room_id=room_id,
        participant_id="p",
        sender_id=uuid.uuid4(),
        display_name="Anna",
        message_type="user",
        content=content,
        created_at=created_at_of(message_id),
    )


class Setup:
    def __init__(self, own: OwnRedis, store: ChatStore, tap: Any, room_id: uuid.UUID) -> None:
        self.own, self.store, self.tap, self.room_id = own, store, tap, room_id

    async def published(self, wait: float) -> list[str]:
        seen: list[str] = []
        end = time.monotonic() + wait
        while (left := end - time.monotonic()) > 0:
            got = await self.tap.get_message(ignore_subscribe_messages=True, timeout=left)
            if got is not None:
                seen.append(got["data"])
        return seen

    async def stored(self) -> list[str]:
        return await self.store.redis.zrange(keys.chat_messages(self.room_id), 0, -1)  # type: ignore[no-any-return]


@pytest.fixture
async def setup(own_redis: OwnRedis) -> AsyncIterator[Setup]:
    settings = chat_settings(
        "http://127.0.0.1:9", redis_url=own_redis.url, dependency_timeout_seconds=TIMEOUT
    )
    redis = create_redis(settings)
    watcher = aioredis.from_url(own_redis.url, decode_responses=True)
    room_id = uuid.uuid4()
    tap = watcher.pubsub()
    await tap.subscribe(keys.chat_channel(room_id))
    await tap.get_message(timeout=1)  # the subscription's confirmation
    store = ChatStore(redis, settings)
    # Loads the scripts into this fresh Redis, so a frozen call is the script itself and not an
    # EVALSHA that would only meet NOSCRIPT after the thaw.
    elsewhere = uuid.uuid4()
    assert (await store.append(message(elsewhere, "warm-up"), ["warm-up"])).written
    assert not await store.swap(elsewhere, "no such member", None, "nothing")
    try:
        yield Setup(own_redis, store, tap, room_id)
    finally:
        await tap.aclose()
        await watcher.aclose()
        await redis.aclose()


async def frozen_for(own: OwnRedis, seconds: float) -> None:
    own.signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        own.signal(signal.SIGCONT)


async def test_a_post_that_reaches_redis_after_its_caller_gave_up_is_neither_stored_nor_delivered(setup):
    late = message(setup.room_id, "sent into a frozen Redis")
    setup.own.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeout):
            await setup.store.append(late, ['{"type":"message.created"}'])
        assert time.monotonic() - started < TIMEOUT + 1
    finally:
        setup.own.signal(signal.SIGCONT)
    # Redis now runs the script that waited in its socket: it must find itself too late.
    assert await setup.published(wait=1.0) == []
    assert await setup.stored() == []
    assert await setup.store.redis.get(keys.chat_head(setup.room_id)) is None

    # The room is not stuck: the next post is written and delivered as usual.
    after = message(setup.room_id, "after the thaw")
    assert (await setup.store.append(after, ["after"])).written
    assert await setup.published(wait=0.5) == ["after"]
    assert [StoredMessage.model_validate_json(m).content for m in await setup.stored()] == ["after the thaw"]


async def test_a_post_held_up_briefly_is_written_and_delivered_once(setup):
    quick = message(setup.room_id, "held up for 0.2 s")
    append = asyncio.create_task(setup.store.append(quick, ["quick"]))
    await frozen_for(setup.own, 0.2)
    assert (await append).written
    assert await setup.published(wait=0.5) == ["quick"]
    assert len(await setup.stored()) == 1


async def test_an_edit_that_reaches_redis_after_its_caller_gave_up_changes_nothing(setup):
    original = message(setup.room_id, "before")
    assert (await setup.store.append(original, ["created"])).written
    assert await setup.published(wait=0.3) == ["created"]
    member = original.to_member()
    edited = original.model_copy(update={"content": "after"})

    setup.own.signal(signal.SIGSTOP)
    try:
        with pytest.raises(RedisTimeout):
            await setup.store.swap(setup.room_id, member, edited, "updated")
    finally:
        setup.own.signal(signal.SIGCONT)
    assert await setup.published(wait=1.0) == []
    assert await setup.stored() == [member]
