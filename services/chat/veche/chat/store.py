"""All of chat's own Redis: the room's message sorted set and its Lua scripts (the room
state it reads, membership and presence, is veche.common.roomstate's).

`chat:room:{<room>}:messages` holds score = creation ms, member = the message JSON, which
starts with `{"id":"<uuidv7>"` (see StoredMessage). Members of one score sort by id, so the
set's order is id order, and a message is found from its id alone: the id carries its score.

`chat:room:{<room>}:head` keeps the greatest id ever written to the room. A write whose id is
not above it is refused and retried with a larger id, so ids grow in the order writes land,
whichever replica (and clock) made them: a reader that saw id X has seen every message before
X, which is what makes paging with `after` and a socket's replay gap-free.

Every change publishes its frames from inside the same script, so the live stream of a room
is in exactly the order of its writes, and nothing is stored without being published. On a
Redis Cluster of Redis 7 or later the scripts SPUBLISH to the room's shard channel (it carries
the room's hash tag, so it lives in the slot of the keys the script touches), as the fan-out
SSUBSCRIBEs there."""

import time
from dataclasses import dataclass
from uuid import UUID

import redis.asyncio as aioredis

from veche.chat.schemas import StoredMessage
from veche.chat.settings import ChatSettings
from veche.common import keys
from veche.common.errors import Unavailable
from veche.common.ids import timestamp_ms
from veche.common.roomstate import MEMBER_TOUCH_LUA

# Compares two canonical UUID strings as 128-bit numbers, chunk by chunk (each chunk is exact
# in a Lua number), without relying on the server's string collation. A member's id sits at
# characters 8..43: right after `{"id":"`.
_LUA_LESS = """
local CHUNKS = {{1, 8}, {10, 13}, {15, 18}, {20, 23}, {25, 36}}
local function less(a, b)
  for _, c in ipairs(CHUNKS) do
    local x = tonumber(string.sub(a, c[1], c[2]), 16)
    local y = tonumber(string.sub(b, c[1], c[2]), 16)
    if x ~= y then return x < y end
  end
  return false
end
local function id_of(member)
  return string.sub(member, 8, 43)
end
"""

# The room's history has a byte budget besides its message cap: `bytes` (a string key) holds
# the sum of the stored members' lengths, kept by every script that adds or removes one; the
# oldest messages go first when a write would pass the budget.
_LUA_BYTES = """
local function total_bytes(messages, bytes)
  local total = redis.call('GET', bytes)
  if total then return tonumber(total) end
  total = 0  -- a history written before the budget existed: counted once
  for _, m in ipairs(redis.call('ZRANGE', messages, 0, -1)) do total = total + #m end
  return total
end
local function drop(messages, members)
  local freed = 0
  for _, m in ipairs(members) do
    redis.call('ZREM', messages, m)
    freed = freed + #m
  end
  return freed
end
"""

# A write carries the moment (Redis's clock, ms) after which its caller no longer waits for the
# answer: a script that only runs later (Redis was frozen or swamped while the call sat in its
# socket) writes nothing, so a caller that gave up and answered 503 never has its message
# stored and delivered after all. Written before any other command, since TIME is not
# deterministic (scripts replicate their effects, the default from Redis 5 on).
_LUA_DEADLINE = """
if redis.replicate_commands then redis.replicate_commands() end
local function too_late(deadline_ms)
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(deadline_ms)
end
"""

# KEYS: messages, head, bytes, [events seen]
# ARGV: id, score, member, min_score, max_count, ttl_ms, channel, event id or '', max_bytes,
#       deadline ms, envelope...
# Returns {1} written, {0, head} id not above the head (retry with a larger id), {2} duplicate,
# {3} too late (nothing written). The same message again (a call retried after its connection
# broke, which may have run) finds itself stored and answers {1} without writing or publishing
# anything twice.
_APPEND = (
    _LUA_LESS
    + _LUA_BYTES
    + _LUA_DEADLINE
    + """
local id = ARGV[1]
if KEYS[4] and redis.call('SISMEMBER', KEYS[4], ARGV[8]) == 1 then return {2} end
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return {1} end
if too_late(ARGV[10]) then return {3} end
local head = redis.call('GET', KEYS[2])
if head and not less(head, id) then return {0, head} end
local total = total_bytes(KEYS[1], KEYS[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
total = total + #ARGV[3]
total = total - drop(KEYS[1], redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[4], 'BYSCORE'))
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if over > 0 then total = total - drop(KEYS[1], redis.call('ZRANGE', KEYS[1], 0, over - 1)) end
local budget = tonumber(ARGV[9])
while total > budget and redis.call('ZCARD', KEYS[1]) > 1 do
  total = total - drop(KEYS[1], redis.call('ZRANGE', KEYS[1], 0, 0))
end
redis.call('SET', KEYS[3], total, 'PX', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], id, 'PX', ARGV[6])
if KEYS[4] then
  redis.call('SADD', KEYS[4], ARGV[8])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
end
for i = 11, #ARGV do redis.call(PUBLISH, ARGV[7], ARGV[i]) end
return {1}
"""
)

# page(messages key, mode (latest|after|before), min_score, limit, cursor_ms, cursor id): the
# members of one page, in the set's order for `after`, newest first otherwise. after/before
# are exclusive; members of the cursor's own millisecond are skipped by id.
_LUA_PAGE = """
local function page(key, mode, min_score, limit, cursor_ms, cursor)
  if mode == 'latest' then
    return redis.call('ZRANGE', key, '+inf', min_score, 'BYSCORE', 'REV', 'LIMIT', 0, limit)
  end
  local older = tonumber(cursor_ms) < tonumber(min_score)
  local skip = 0
  if mode == 'after' then
    if older then
      return redis.call('ZRANGE', key, min_score, '+inf', 'BYSCORE', 'LIMIT', 0, limit)
    end
    for _, m in ipairs(redis.call('ZRANGE', key, cursor_ms, cursor_ms, 'BYSCORE')) do
      if not less(cursor, id_of(m)) then skip = skip + 1 end
    end
    return redis.call('ZRANGE', key, cursor_ms, '+inf', 'BYSCORE', 'LIMIT', skip, limit)
  end
  if older then return {} end
  for _, m in ipairs(redis.call('ZRANGE', key, cursor_ms, cursor_ms, 'BYSCORE')) do
    if not less(id_of(m), cursor) then skip = skip + 1 end
  end
  return redis.call('ZRANGE', key, cursor_ms, min_score, 'BYSCORE', 'REV', 'LIMIT', skip, limit)
end
"""

# KEYS: messages. ARGV: mode (latest|after|before), min_score, limit, cursor_ms, cursor_id
_PAGE = _LUA_LESS + _LUA_PAGE + "return page(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"

# A member's history request in one step: the membership check and sign of life of
# veche.common.roomstate (MEMBER_TOUCH_LUA), then, only for an active member, the page.
# KEYS: participants, presence, messages. ARGV: participant id, now ms, then _PAGE's ARGV.
# Returns the page's members joined by line feeds (compact JSON has none of its own), or false
# when the hash alone does not show an active member (nothing was written, and the caller is
# resolved the usual way). One string, because redis-py's own parser reads a reply of fifty
# members slowly: joining them saves the chat process about a fifth of the request, and costs
# Redis about as much as the rest of the script. (With hiredis installed the client would read
# the members as fast, and `return page(…)` would be the better trade.)
_MEMBER_PAGE = (
    MEMBER_TOUCH_LUA
    + _LUA_LESS
    + _LUA_PAGE
    + """
if not member_touch(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return false end
return table.concat(page(KEYS[3], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]), '\\n')
"""
)

# Compare-and-swap of one message: replaces (or, with an empty new member, removes) `old` only
# if it is still there, and publishes the change. An edit and a delete of one message are
# serialised here, so neither can act on a version the other already replaced.
# KEYS: messages, bytes. ARGV: old member, new member or '', score, channel, envelope, deadline
# ms. Returns 1 swapped, 0 `old` is gone, -1 too late (nothing changed; see _LUA_DEADLINE).
_SWAP = (
    _LUA_BYTES
    + _LUA_DEADLINE
    + """
if too_late(ARGV[6]) then return -1 end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local total = total_bytes(KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
local ttl = redis.call('PTTL', KEYS[1])
total = total - #ARGV[1] + #ARGV[2]
if ttl > 0 then redis.call('SET', KEYS[2], total, 'PX', ttl) else redis.call('SET', KEYS[2], total) end
redis.call(PUBLISH, ARGV[4], ARGV[5])
return 1
"""
)

# KEYS: events seen. ARGV: ttl_ms, event id, channel, envelope...
_PUBLISH_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
for i = 4, #ARGV do redis.call(PUBLISH, ARGV[3], ARGV[i]) end
return 1
"""


def _publisher(sharded: bool) -> str:
    """The Lua prelude naming the publish command: SPUBLISH in a cluster whose server has it
    (the same rule as the fan-out's links, veche.chat.fanout.SHARDED_SINCE), else PUBLISH."""
    return (
        f"local PUBLISH = 'PUBLISH'\nif {'true' if sharded else 'false'} and redis.REDIS_VERSION_NUM"
        " and redis.REDIS_VERSION_NUM >= 0x070000 then PUBLISH = 'SPUBLISH' end\n"
    )


def head_key(room_id: UUID | str) -> str:
    """String: the greatest message id ever written to the room."""
    return keys.chat_head(room_id)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# The share of the Redis timeout a write may take to run before it is too late to run at all:
# the rest is left for its answer to come back before the caller stops waiting for it.
_WRITE_WINDOW = 0.75


class TooLate(Unavailable):
    """A write reached Redis after its caller had stopped waiting: nothing was written."""

    def __init__(self) -> None:
        super().__init__("The chat store answered too slowly; nothing was changed. Try again", retry_after=1)


@dataclass(frozen=True)
class AppendResult:
    written: bool
    duplicate: bool = False
    head: UUID | None = None


class ChatStore:
    def __init__(self, redis: aioredis.Redis, settings: ChatSettings) -> None:
        self.redis = redis
        self.ttl_ms = settings.chat_ttl_seconds * 1000
        self.max_messages = settings.chat_max_messages
        self.max_bytes = settings.chat_max_bytes
        self.write_window_ms = int(settings.dependency_timeout_seconds * _WRITE_WINDOW * 1000)
        publisher = _publisher(sharded=bool(settings.redis_cluster_seeds))
        self._append = redis.register_script(publisher + _APPEND)
        self._page = redis.register_script(_PAGE)
        self._member_page = redis.register_script(_MEMBER_PAGE)
        self._swap = redis.register_script(publisher + _SWAP)
        self._publish_once = redis.register_script(publisher + _PUBLISH_ONCE)

    def _deadline(self) -> int:
        """The deadline of a write sent now (see _LUA_DEADLINE): it assumes the clocks of Redis
        and of this process agree to well within the timeout's remaining quarter."""
        return now_ms() + self.write_window_ms

    def _min_score(self) -> int:
        """Scores below this are past their lifetime: never returned, trimmed on write."""
        return now_ms() - self.ttl_ms

    async def append(
        self, message: StoredMessage, envelopes: list[str], event_id: UUID | None = None
    ) -> AppendResult:
        room_id = message.room_id
        keys_ = [keys.chat_messages(room_id), head_key(room_id), keys.chat_bytes(room_id)]
        if event_id is not None:
            keys_.append(keys.chat_events_seen(room_id))
        args: list[str | int] = [
            str(message.id),
            message.score,
            message.to_member(),
            self._min_score(),
            self.max_messages,
            self.ttl_ms,
            keys.chat_channel(room_id),
            str(event_id) if event_id is not None else "",
            self.max_bytes,
            self._deadline(),
            *envelopes,
        ]
        result = await self._append(keys=keys_, args=args)
        code = int(result[0])
        if code == 1:
            return AppendResult(written=True)
        if code == 2:
            return AppendResult(written=False, duplicate=True)
        if code == 3:
            raise TooLate()
        return AppendResult(written=False, head=UUID(result[1]))

    def _page_args(self, limit: int, after: UUID | None, before: UUID | None) -> list[str | int]:
        min_score = self._min_score()
        if after is not None:
            return ["after", min_score, limit, timestamp_ms(after), str(after)]
        if before is not None:
            return ["before", min_score, limit, timestamp_ms(before), str(before)]
        return ["latest", min_score, limit]

    @staticmethod
    def _oldest_first(raw: list[str], after: UUID | None, before: UUID | None) -> list[str]:
        """A page as _PAGE answers it, oldest first, kept below `before` when paging with
        `after`. Members start with `{"id":"<canonical id>"`: equal-length lowercase hex ids
        compare as strings as they do as numbers."""
        if after is None:
            raw.reverse()
            return raw
        if before is None:
            return raw
        bound = str(before)
        return [m for m in raw if m[7:43] < bound]

    async def page_raw(
        self, room_id: UUID, *, limit: int, after: UUID | None = None, before: UUID | None = None
    ) -> list[str]:
        """The stored members of a page, oldest first: the oldest `limit` after `after` when
        given (only those before `before` when both are), otherwise the newest `limit` (before
        `before` when given). Cursors are exclusive."""
        raw = await self._page(keys=[keys.chat_messages(room_id)], args=self._page_args(limit, after, before))
        return self._oldest_first(raw, after, before)

    async def page(
        self, room_id: UUID, *, limit: int, after: UUID | None = None, before: UUID | None = None
    ) -> list[StoredMessage]:
        """page_raw(), parsed."""
        raw = await self.page_raw(room_id, limit=limit, after=after, before=before)
        return [StoredMessage.model_validate_json(m) for m in raw]

    async def member_page(
        self,
        room_id: UUID,
        participant_id: str,
        *,
        limit: int,
        after: UUID | None = None,
        before: UUID | None = None,
    ) -> list[str] | None:
        """page_raw() for a caller whom the room's membership hash shows to be an active
        member, with the member's sign of life recorded, in one round trip; None (nothing
        written or read) when the hash alone does not show an active member: the caller is
        then resolved the usual way (ChatService.authorize)."""
        joined = await self._member_page(
            keys=[keys.room_participants(room_id), keys.room_presence(room_id), keys.chat_messages(room_id)],
            args=[participant_id, now_ms(), *self._page_args(limit, after, before)],
        )
        if joined is None:
            return None
        return self._oldest_first(joined.split("\n") if joined else [], after, before)

    async def find(self, room_id: UUID, message_id: UUID) -> tuple[str, StoredMessage] | None:
        """The stored member of a live message and its parsed form, found in O(log n) through
        the score its id carries."""
        score = timestamp_ms(message_id)
        if score < self._min_score():
            return None
        prefix = f'{{"id":"{message_id}"'
        members: list[str] = await self.redis.zrange(  # type: ignore[assignment]
            keys.chat_messages(room_id), score, score, byscore=True
        )
        for member in members:
            if member.startswith(prefix):
                return member, StoredMessage.model_validate_json(member)
        return None

    async def swap(self, room_id: UUID, old_member: str, new: StoredMessage | None, envelope: str) -> bool:
        """Replaces (new) or removes (None) a message if `old_member` is still its current
        version; False when a concurrent edit or delete got there first."""
        score = new.score if new is not None else 0
        result = await self._swap(
            keys=[keys.chat_messages(room_id), keys.chat_bytes(room_id)],
            args=[
                old_member,
                new.to_member() if new is not None else "",
                score,
                keys.chat_channel(room_id),
                envelope,
                self._deadline(),
            ],
        )
        if int(result) < 0:
            raise TooLate()
        return bool(int(result))

    async def publish_once(self, room_id: UUID, event_id: UUID, envelopes: list[str]) -> bool:
        """Publishes frames for an event unless that event already did."""
        result = await self._publish_once(
            keys=[keys.chat_events_seen(room_id)],
            args=[self.ttl_ms, str(event_id), keys.chat_channel(room_id), *envelopes],
        )
        return bool(int(result))
