"""Deletes every Redis key of a room once it has ended, on the room.ended events of the stream."""

import asyncio
import logging
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from common import keys
from common.events import RoomEvent
from janitor.metrics import EVENT_FAILURES, EVENTS_PROCESSED, KEYS_DELETED

log = logging.getLogger("veche.janitor.cleanup")

SCAN_COUNT = 1000
DELETE_BATCH = 200
# Longer than any redelivery of one event can take; JetStream's duplicate window is 10 min.
EVENT_DONE_TTL_SECONDS = 24 * 3600


def event_done_key(durable: str, event_id: UUID | str) -> str:
    """Marker that this consumer finished the event (the janitor's own key, never a room's)."""
    return f"janitor:{durable}:event:{event_id}"


async def delete_room_keys(redis: aioredis.Redis, room_id: UUID | str) -> int:
    """Deletes every key of the room (SCAN, never KEYS); returns how many were deleted."""
    scan_options: dict[str, Any] = {}
    if isinstance(redis, RedisCluster):
        # The hash tag puts every key of the room in one slot: only its node holds any.
        scan_options["target_nodes"] = redis.get_node_from_key(keys.room_participants(room_id))
    deleted = 0
    for pattern in keys.all_room_key_patterns(room_id):
        found: list[str] = []
        async for key in redis.scan_iter(match=pattern, count=SCAN_COUNT, **scan_options):
            found.append(key)
            if len(found) >= DELETE_BATCH:
                deleted += await redis.unlink(*found)
                found = []
        if found:
            deleted += await redis.unlink(*found)
    KEYS_DELETED.inc(deleted)
    return deleted


class RoomEndedCleanup:
    """The handler of the janitor's durable consumer (common.consumer.DurableConsumer).

    Events are published right after rooms commits, so chat may still be writing a room's last
    system message, and rooms its last cache entry, when room.ended arrives: the keys are
    deleted at once and again after a grace period, and the event is acknowledged only after
    the second pass. A janitor that dies in between gets the event redelivered (to itself or
    another replica), which does both again."""

    def __init__(self, redis: aioredis.Redis, durable: str, grace_seconds: float) -> None:
        self.redis = redis
        self.durable = durable
        self.grace_seconds = grace_seconds

    async def __call__(self, event: RoomEvent) -> None:
        if event.type != "room.ended":
            EVENTS_PROCESSED.labels("ignored").inc()
            return
        done = event_done_key(self.durable, event.event_id)
        try:
            if await self.redis.exists(done):
                EVENTS_PROCESSED.labels("duplicate").inc()
                return
            first = await delete_room_keys(self.redis, event.room_id)
            await asyncio.sleep(self.grace_seconds)
            late = await delete_room_keys(self.redis, event.room_id)
            await self.redis.set(done, "1", ex=EVENT_DONE_TTL_SECONDS)
        except Exception:
            EVENT_FAILURES.inc()
            raise
        EVENTS_PROCESSED.labels("cleaned").inc()
        log.info(
            "room %s cleaned", event.room_id,
            extra={"fields": {"keys_deleted": first + late, "late_keys": late}},
        )
