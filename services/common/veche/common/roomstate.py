"""The state of rooms in Redis, owned by this one module: each room's membership hash (which
chat and media-token read to authorize a caller), its cached public view, and its members'
signs of life (presence, which the janitor reads). rooms writes the hash and the cache;
anybody may touch presence; the key names are in common.keys. PostgreSQL stays the truth:
everything here is rebuilt from it when missing."""

import json
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys
from veche.common.events import PublicParticipant

# Presence outlives every room (the janitor's cleanup deletes it with the room's other keys).
PRESENCE_KEY_TTL_SECONDS = 6 * 3600
# The cached public view of a room: short, and dropped on every change.
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

Membership = tuple[str | None, str | None]  # (room status or None: hash missing, member JSON)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_member(raw: str) -> PublicParticipant:
    return PublicParticipant.model_validate(json.loads(raw))


class RoomState:
    def __init__(self, redis: aioredis.Redis, participants_ttl: int = 21600) -> None:
        self.redis = redis
        self.participants_ttl = participants_ttl

    # --- the membership hash: written by rooms ------------------------------------------------

    @staticmethod
    def _invalidate(pipe: Any, room_id: UUID) -> None:
        meta = keys.room_meta(room_id)
        pipe.hincrby(meta, "gen", 1)
        pipe.hdel(meta, "json")
        pipe.expire(meta, META_TTL_SECONDS * 10)

    async def put_member(
        self, room_id: UUID, participant_id: str, member: PublicParticipant, status: str = "active"
    ) -> None:
        key = keys.room_participants(room_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={participant_id: member.model_dump_json(), keys.ROOM_STATUS_FIELD: status})
            pipe.expire(key, self.participants_ttl)
            self._invalidate(pipe, room_id)
            await pipe.execute()

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

    async def invalidate_room(self, room_id: UUID) -> None:
        """Drops the cached view again once a change is committed: a reader that loaded the
        room between the first invalidation (inside the transaction) and the commit may have
        cached the state from before the change."""
        async with self.redis.pipeline(transaction=True) as pipe:
            self._invalidate(pipe, room_id)
            await pipe.execute()

    async def refresh(self, room_id: UUID) -> None:
        await self.redis.expire(keys.room_participants(room_id), self.participants_ttl)

    # --- the membership hash: read by everyone --------------------------------------------------

    async def member(self, room_id: UUID, participant_id: str | None) -> Membership:
        """(room status, member JSON) from the hash; status None means the hash is missing."""
        fields = [keys.ROOM_STATUS_FIELD] + ([participant_id] if participant_id else [])
        values = await self.redis.hmget(keys.room_participants(room_id), fields)
        status = str(values[0]) if values[0] is not None else None
        raw = values[1] if participant_id and values[1] else None
        return status, (str(raw) if raw else None)

    async def memberships(self, pairs: list[tuple[UUID, str]]) -> list[Membership]:
        """member() for many (room, participant secret) pairs in one round trip."""
        if not pairs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, participant_id in pairs:
                pipe.hmget(keys.room_participants(room_id), [keys.ROOM_STATUS_FIELD, participant_id])
            rows = await pipe.execute()
        return [(row[0], row[1]) for row in rows]

    async def members(self, room_id: UUID) -> list[PublicParticipant]:
        """Every active member of the room in the hash (public views only)."""
        raw = await self.redis.hgetall(keys.room_participants(room_id))
        return [parse_member(str(v)) for k, v in raw.items() if k != keys.ROOM_STATUS_FIELD]

    # --- the cached public view of a room (rooms') ---------------------------------------------

    async def cached_room(self, room_id: UUID) -> tuple[str | None, str]:
        """(the cached room JSON or None, the cache generation to hand back to cache_room)."""
        raw, gen = await self.redis.hmget(keys.room_meta(room_id), ["json", "gen"])
        return (str(raw) if raw else None), str(gen or "0")

    async def cache_room(self, room_id: UUID, room_json: str, generation: str) -> None:
        await self.redis.eval(  # type: ignore[misc]
            _STORE_IF_CURRENT, 1, keys.room_meta(room_id), generation, room_json, META_TTL_SECONDS
        )

    # --- presence: signs of life -----------------------------------------------------------------

    async def touch(self, room_id: UUID | str, public_id: UUID | str) -> None:
        await self.touch_many([(room_id, public_id)])

    async def touch_many(self, pairs: list[tuple[UUID | str, UUID | str]]) -> None:
        """Signs of life of many (room, member public id) in one round trip."""
        if not pairs:
            return
        stamp = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, public_id in pairs:
                key = keys.room_presence(room_id)
                pipe.zadd(key, {str(public_id): stamp})
                pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
            await pipe.execute()

    async def seed_presence(self, pairs: Sequence[tuple[UUID | str, UUID | str]]) -> None:
        """Records "seen now" for the members that have no sign of life recorded at all (Redis
        lost its data): missing presence is unknown, not idle, so each gets a whole presence
        timeout from now to show life. A recorded sign is never overwritten (ZADD NX)."""
        if not pairs:
            return
        stamp = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, public_id in pairs:
                key = keys.room_presence(room_id)
                pipe.zadd(key, {str(public_id): stamp}, nx=True)
                pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
            await pipe.execute()

    async def keeper_alive(self, replica: str) -> None:
        """A chat replica that keeps presence says it is alive (see live_keepers)."""
        stamp = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.presence_keepers(), {replica: stamp})
            # Replicas gone for an hour are forgotten.
            pipe.zremrangebyscore(keys.presence_keepers(), "-inf", stamp - 3_600_000)
            pipe.expire(keys.presence_keepers(), PRESENCE_KEY_TTL_SECONDS)
            await pipe.execute()

    async def live_keepers(self, since_ms: int) -> int:
        """How many chat replicas kept presence since since_ms."""
        return int(await self.redis.zcount(keys.presence_keepers(), since_ms, "+inf"))

    async def last_seen(self, room_id: UUID | str, public_id: UUID | str) -> int | None:
        """Epoch ms of the member's last sign of life, or None when none was recorded."""
        return (await self.last_seen_many([(room_id, public_id)]))[0]

    async def last_seen_many(self, pairs: list[tuple[UUID | str, UUID | str]]) -> list[int | None]:
        if not pairs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, public_id in pairs:
                pipe.zscore(keys.room_presence(room_id), str(public_id))
            scores = await pipe.execute()
        return [int(score) if score is not None else None for score in scores]
