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


# For one-step scripts of the services that act for a member (chat reads a history page in the
# same round trip): a Lua function `member_touch(participants, presence, participant id, now ms)`
# that reads the caller as member_and_e2ee() does and, only when that is an active member by
# veche.common.membership's rules (the hash records the room's status and e2ee flag, the status
# is not `ended`, the caller is in it), records the member's sign of life as touch() does.
# It answers true when it did (the caller may act), false otherwise: then nothing was written
# and the caller is resolved the usual way (MembershipResolver, which may ask rooms). Its keys
# must be passed in the script's KEYS (both carry the room's hash tag, so a Redis Cluster
# script on a room stays in one slot).
MEMBER_TOUCH_LUA = f"""
local function member_touch(participants, presence, participant_id, now_ms)
  local v = redis.call('HMGET', participants, '{keys.ROOM_STATUS_FIELD}', '{keys.ROOM_E2EE_FIELD}',
    participant_id)
  if not v[1] or not v[2] or not v[3] or v[1] == 'ended' then return false end
  local ok, member = pcall(cjson.decode, v[3])
  if not ok or type(member) ~= 'table' or type(member.id) ~= 'string' then return false end
  redis.call('ZADD', presence, now_ms, member.id)
  redis.call('EXPIRE', presence, {PRESENCE_KEY_TTL_SECONDS})
  return true
end
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_member(raw: str) -> PublicParticipant:
    return PublicParticipant.model_validate(json.loads(raw))


# The hash's members change only when the hash exists (see RoomState.put_member); the cached
# room view is dropped either way. KEYS: participants, meta. ARGV: status, ttl, meta ttl,
# number of (participant id, member JSON) pairs to put, the pairs, then the ids to drop.
_CHANGE_MEMBERS = f"""
if redis.call('EXISTS', KEYS[1]) == 1 then
  local pairs = tonumber(ARGV[4])
  for i = 1, pairs do
    redis.call('HSET', KEYS[1], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
  end
  for i = 5 + 2 * pairs, #ARGV do
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
  redis.call('HSET', KEYS[1], '{keys.ROOM_STATUS_FIELD}', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
redis.call('HINCRBY', KEYS[2], 'gen', 1)
redis.call('HDEL', KEYS[2], 'json')
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


# KEYS: keepers (replica -> last round), since (replica -> first round). ARGV: replica, now ms,
# ttl. Replicas silent for an hour are forgotten in both.
_KEEPER_ALIVE = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - 3600000)
for _, replica in ipairs(gone) do
  redis.call('ZREM', KEYS[1], replica)
  redis.call('ZREM', KEYS[2], replica)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""

# KEYS: keepers, since. ARGV: heard since (ms), keeping since at the latest (ms or +inf).
_LIVE_KEEPERS = """
local count = 0
for _, replica in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  local first = redis.call('ZSCORE', KEYS[2], replica)
  if ARGV[2] == '+inf' or (first and tonumber(first) <= tonumber(ARGV[2])) then
    count = count + 1
  end
end
return count
"""


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
        """Adds or updates one member in the room's hash, when the hash exists. A missing hash
        (Redis restarted, the TTL passed) stays missing: written with this one member it would
        make everyone else look like a stranger; the next lookup rebuilds it whole."""
        await self._change_members(room_id, [participant_id, member.model_dump_json()], [], status)

    async def drop_members(self, room_id: UUID, participant_ids: list[str], status: str) -> None:
        """Removes members from the room's hash (and sets its status), when the hash exists."""
        await self._change_members(room_id, [], participant_ids, status)

    async def _change_members(self, room_id: UUID, put: list[str], drop: list[str], status: str) -> None:
        await self.redis.eval(  # type: ignore[misc]
            _CHANGE_MEMBERS,
            2,
            keys.room_participants(room_id),
            keys.room_meta(room_id),
            status,
            self.participants_ttl,
            META_TTL_SECONDS * 10,
            len(put) // 2,
            *put,
            *drop,
        )

    async def rebuild(
        self,
        room_id: UUID,
        status: str,
        members: list[tuple[str, PublicParticipant]],
        e2ee: bool | None = None,
    ) -> None:
        key = keys.room_participants(room_id)
        mapping: dict[str | bytes, str | bytes] = {pid: member.model_dump_json() for pid, member in members}
        mapping[keys.ROOM_STATUS_FIELD] = status
        if e2ee is not None:
            mapping[keys.ROOM_E2EE_FIELD] = "1" if e2ee else "0"
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

    async def member_and_e2ee(
        self, room_id: UUID, participant_id: str | None
    ) -> tuple[str | None, str | None, bool | None]:
        """member() plus the room's e2ee flag (None when the hash does not record it)."""
        fields = [keys.ROOM_STATUS_FIELD, keys.ROOM_E2EE_FIELD] + ([participant_id] if participant_id else [])
        values = await self.redis.hmget(keys.room_participants(room_id), fields)
        status = str(values[0]) if values[0] is not None else None
        e2ee = None if values[1] is None else str(values[1]) == "1"
        raw = values[2] if participant_id and values[2] else None
        return status, (str(raw) if raw else None), e2ee

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
        return [parse_member(str(v)) for k, v in raw.items() if not str(k).startswith("~")]

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
        await self._mark_seen(pairs, only_missing=False)

    async def seed_presence(self, pairs: Sequence[tuple[UUID | str, UUID | str]]) -> None:
        """Records "seen now" for the members that have no sign of life recorded at all (Redis
        lost its data): missing presence is unknown, not idle, so each gets a whole presence
        timeout from now to show life. A recorded sign is never overwritten (ZADD NX)."""
        await self._mark_seen(pairs, only_missing=True)

    async def _mark_seen(self, pairs: Sequence[tuple[UUID | str, UUID | str]], only_missing: bool) -> None:
        if not pairs:
            return
        stamp = now_ms()
        async with self.redis.pipeline(transaction=False) as pipe:
            for room_id, public_id in pairs:
                key = keys.room_presence(room_id)
                pipe.zadd(key, {str(public_id): stamp}, nx=only_missing)
                pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
            await pipe.execute()

    async def keeper_alive(self, replica: str) -> None:
        """A chat replica that keeps presence says it is alive (see live_keepers)."""
        await self.redis.eval(  # type: ignore[misc]
            _KEEPER_ALIVE,
            2,
            keys.presence_keepers(),
            keys.presence_keepers_since(),
            replica,
            now_ms(),
            PRESENCE_KEY_TTL_SECONDS,
        )

    async def live_keepers(self, since_ms: int, established_before_ms: int | None = None) -> int:
        """How many chat replicas kept presence since since_ms, counting only those that have
        been keeping it since established_before_ms when given: a replica that just (re)started
        has not yet heard from the members whose sockets are still reconnecting."""
        return int(
            await self.redis.eval(  # type: ignore[misc]
                _LIVE_KEEPERS,
                2,
                keys.presence_keepers(),
                keys.presence_keepers_since(),
                since_ms,
                established_before_ms if established_before_ms is not None else "+inf",
            )
        )

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
