"""Deletes every Redis key of a room once it has ended, on the room.ended events of the stream."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys
from veche.common.events import RoomEvent
from veche.janitor.metrics import EVENT_FAILURES, EVENTS_PROCESSED, KEYS_DELETED

log = logging.getLogger("veche.janitor.cleanup")

# Longer than any redelivery of one event can take; JetStream's duplicate window is 10 min.
EVENT_DONE_TTL_SECONDS = 24 * 3600


def event_done_key(durable: str, event_id: UUID | str) -> str:
    """Marker that this consumer finished the event (the janitor's own key, never a room's)."""
    return f"janitor:{durable}:event:{event_id}"


async def delete_room_keys(redis: aioredis.Redis, room_id: UUID | str, extra: list[str]) -> int:
    """Deletes every key of the room by name (no SCAN of the keyspace: the names are known, and
    in Redis Cluster they share one slot thanks to the hash tag), plus `extra` keys about the
    room kept elsewhere (its rate-limit counter); returns how many existed."""
    deleted = int(await redis.unlink(*keys.room_key_names(room_id)))
    for key in extra:
        deleted += int(await redis.unlink(key))
    KEYS_DELETED.inc(deleted)
    return deleted


class RoomEndedCleanup:
    """The handler of the janitor's durable consumer (common.consumer.DurableConsumer).

    Events are published right after rooms commits, so chat may still be writing a room's last
    system message, and rooms its last cache entry, when room.ended arrives: the keys are
    deleted at once and again after a grace period, and the event is acknowledged only after
    the second pass. The handler returns after the first pass with the second one as the rest
    of its work (DurableConsumer acknowledges when that finishes), so a burst of ended rooms
    is cleaned at once, not batch by batch behind each grace period. A janitor that dies in
    between gets the event redelivered (to itself or another replica), which does both again."""

    def __init__(
        self,
        redis: aioredis.Redis,
        durable: str,
        grace_seconds: float,
        extra_keys: Callable[[UUID], list[str]] = lambda room_id: [],
        has_ended: Callable[[UUID], Awaitable[bool]] | None = None,
    ) -> None:
        self.redis = redis
        self.has_ended = has_ended
        self.extra_keys = extra_keys
        self.durable = durable
        self.grace_seconds = grace_seconds

    async def __call__(self, event: RoomEvent) -> Awaitable[None] | None:
        if event.type != "room.ended":
            EVENTS_PROCESSED.labels("ignored").inc()
            return None
        done = event_done_key(self.durable, event.event_id)
        try:
            if await self.redis.exists(done):
                EVENTS_PROCESSED.labels("duplicate").inc()
                return None
            if self.has_ended is not None and not await self.has_ended(event.room_id):
                EVENTS_PROCESSED.labels("refused").inc()
                log.warning(
                    "room.ended for room %s, which rooms says is active: ignored",
                    event.room_id,
                    extra={"fields": {"event_id": str(event.event_id)}},
                )
                return None
            extra = self.extra_keys(event.room_id)
            first = await delete_room_keys(self.redis, event.room_id, extra)
        except Exception:
            EVENT_FAILURES.inc()
            raise
        # The second pass after the grace, while the consumer goes on with other events; the
        # event is acknowledged when it is done.
        return self._second_pass(event, extra, done, first)

    async def _second_pass(self, event: RoomEvent, extra: list[str], done: str, first: int) -> None:
        try:
            await asyncio.sleep(self.grace_seconds)
            late = await delete_room_keys(self.redis, event.room_id, extra)
            await self.redis.set(done, "1", ex=EVENT_DONE_TTL_SECONDS)
        except Exception:
            EVENT_FAILURES.inc()
            raise
        EVENTS_PROCESSED.labels("cleaned").inc()
        log.info(
            "room %s cleaned",
            event.room_id,
            extra={"fields": {"keys_deleted": first + late, "late_keys": late}},
        )
