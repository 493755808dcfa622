"""The Redis side of rooms: the membership hash that chat and media-token read, the room cache
and presence. PostgreSQL is the truth; everything here is rebuilt from it when missing."""

import json
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys
from veche.common.events import PublicParticipant
from veche.rooms.schemas import RoomView

META_TTL_SECONDS = 60

# The room cache is a hash {json, gen}. Every change bumps `gen` and drops `json`; a reader
# that loaded the room from PostgreSQL stores it only if `gen` is still what it saw before
# loading, so a slow reader can never put back a room older than the last change.
_STORE_IF_CURRENT = """
if (redis.call('HGET', KEYS[1], 'gen') or '0') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'json', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""


class RoomCache:
    def __init__(self, redis: aioredis.Redis, participants_ttl: int) -> None:
        self.redis = redis
        self.participants_ttl = participants_ttl

    async def put_member(
        self, room_id: UUID, participant_id: str, member: PublicParticipant, status: str = "active"
    ) -> None:
        key = keys.room_participants(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={participant_id: member.model_dump_json(), keys.ROOM_STATUS_FIELD: status},
            )
            pipe.expire(key, self.participants_ttl)
            self._invalidate(pipe, room_id)
            await pipe.execute()

    @staticmethod
    def _invalidate(pipe: Any, room_id: UUID) -> None:
        meta = keys.room_meta(room_id)
        pipe.hincrby(meta, "gen", 1)
        pipe.hdel(meta, "json")
        pipe.expire(meta, META_TTL_SECONDS * 10)

    async def drop_members(self, room_id: UUID, participant_ids: list[str], status: str) -> None:
        key = keys.room_participants(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if participant_ids:
                pipe.hdel(key, *participant_ids)
            pipe.hset(key, keys.ROOM_STATUS_FIELD, status)
            pipe.expire(key, self.participants_ttl)
            self._invalidate(pipe, room_id)
            await pipe.execute()

    async def rebuild(self, room_id: UUID, status: str, members: list[tuple[str, PublicParticipant]]) -> None:
        key = keys.room_participants(room_id)
        mapping: dict[str | bytes, str | bytes] = {pid: member.model_dump_json() for pid, member in members}
        mapping[keys.ROOM_STATUS_FIELD] = status
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, self.participants_ttl)
            self._invalidate(pipe, room_id)
            await pipe.execute()

    async def member(self, room_id: UUID, participant_id: str) -> tuple[str | None, str | None]:
        """(room status, member JSON) from the hash; status None means the hash is missing."""
        status, member = await self.redis.hmget(
            keys.room_participants(room_id), [keys.ROOM_STATUS_FIELD, participant_id]
        )
        return (str(status) if status is not None else None), (str(member) if member else None)

    async def refresh(self, room_id: UUID) -> None:
        await self.redis.expire(keys.room_participants(room_id), self.participants_ttl)

    async def cached_room(self, room_id: UUID) -> tuple[RoomView | None, str]:
        """(the cached room or None, the cache generation to hand back to cache_room)."""
        raw, gen = await self.redis.hmget(keys.room_meta(room_id), ["json", "gen"])
        room = RoomView.model_validate_json(raw) if raw else None
        return room, str(gen or "0")

    async def cache_room(self, room: RoomView, generation: str) -> None:
        await self.redis.eval(  # type: ignore[misc]
            _STORE_IF_CURRENT,
            1,
            keys.room_meta(room.id),
            generation,
            room.model_dump_json(),
            META_TTL_SECONDS,
        )


def parse_member(raw: str) -> PublicParticipant:
    return PublicParticipant.model_validate(json.loads(raw))
