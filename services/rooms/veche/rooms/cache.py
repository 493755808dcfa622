"""rooms' view of the room state in Redis (veche.common.roomstate): the same operations, with
the cached room typed as rooms' own RoomView."""

from collections.abc import Awaitable, Callable
from typing import Any, cast
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys
from veche.common.events import PublicParticipant
from veche.common.roomstate import PRESENCE_KEY_TTL_SECONDS, RoomState, now_ms, parse_member
from veche.rooms.schemas import RoomView

__all__ = ["RoomCache", "parse_member"]


class _Queued:
    """Stands in for RoomState's client so that its write methods queue their commands on a
    pipeline (one round trip for several of them). Each command is a coroutine that queues
    and returns nothing; the pipeline's execute() sends them. (Awaiting the pipeline's own
    command methods instead would not do: on a Redis Cluster that resets the pipeline.)"""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        command = getattr(self._pipe, name)

        async def queue(*args: Any, **kwargs: Any) -> None:
            command(*args, **kwargs)

        return queue


class RoomCache(RoomState):
    async def cached_view(self, room_id: UUID) -> tuple[RoomView | None, str]:
        """(the cached room or None, the cache generation to hand back to cache_view)."""
        raw, generation = await self.cached_room(room_id)
        return (RoomView.model_validate_json(raw) if raw else None), generation

    async def cache_view(self, room: RoomView, generation: str) -> None:
        await self.cache_room(room.id, room.model_dump_json(), generation)

    async def joined(self, room_id: UUID, participant_id: str, member: PublicParticipant) -> None:
        """After a join: `put_member` and `touch` of the member, in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            queued = RoomState(cast(aioredis.Redis, _Queued(pipe)), self.participants_ttl)
            await queued.put_member(room_id, participant_id, member)
            presence = keys.room_presence(room_id)
            pipe.zadd(presence, {str(member.id): now_ms()})
            pipe.expire(presence, PRESENCE_KEY_TTL_SECONDS)
            await pipe.execute()
