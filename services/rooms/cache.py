"""The Redis side of rooms: the membership hash that chat and media-token read, the room cache
and presence. PostgreSQL is the truth; everything here is rebuilt from it when missing."""

import json
from uuid import UUID

import redis.asyncio as aioredis

from common import keys
from common.events import PublicParticipant
from rooms.schemas import RoomView

META_TTL_SECONDS = 60


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
            pipe.delete(keys.room_meta(room_id))
            await pipe.execute()

    async def drop_members(self, room_id: UUID, participant_ids: list[str], status: str) -> None:
        key = keys.room_participants(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            if participant_ids:
                pipe.hdel(key, *participant_ids)
            pipe.hset(key, keys.ROOM_STATUS_FIELD, status)
            pipe.expire(key, self.participants_ttl)
            pipe.delete(keys.room_meta(room_id))
            await pipe.execute()

    async def rebuild(
        self, room_id: UUID, status: str, members: list[tuple[str, PublicParticipant]]
    ) -> None:
        key = keys.room_participants(room_id)
        mapping: dict[str | bytes, str | bytes] = {
            pid: member.model_dump_json() for pid, member in members
        }
        mapping[keys.ROOM_STATUS_FIELD] = status
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(key, self.participants_ttl)
            await pipe.execute()

    async def member(self, room_id: UUID, participant_id: str) -> tuple[str | None, str | None]:
        """(room status, member JSON) from the hash; status None means the hash is missing."""
        status, member = await self.redis.hmget(
            keys.room_participants(room_id), [keys.ROOM_STATUS_FIELD, participant_id]
        )
        return (str(status) if status is not None else None), (str(member) if member else None)

    async def refresh(self, room_id: UUID) -> None:
        await self.redis.expire(keys.room_participants(room_id), self.participants_ttl)

    async def invalidate_room(self, room_id: UUID) -> None:
        await self.redis.delete(keys.room_meta(room_id))

    async def cached_room(self, room_id: UUID) -> RoomView | None:
        raw = await self.redis.get(keys.room_meta(room_id))
        return RoomView.model_validate_json(raw) if raw else None

    async def cache_room(self, room: RoomView) -> None:
        await self.redis.set(keys.room_meta(room.id), room.model_dump_json(), ex=META_TTL_SECONDS)


def parse_member(raw: str) -> PublicParticipant:
    return PublicParticipant.model_validate(json.loads(raw))
