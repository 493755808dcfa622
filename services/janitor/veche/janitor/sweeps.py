"""The janitor's sweeps: rooms lists the candidates, presence reads pick the idle, rooms acts.

Rooms is the only reader and writer of its tables and the only publisher of its events, and it
re-checks every request under the room row lock, so a repeated or racing request is a no-op.
Janitor replicas still split the work: each candidate is claimed in Redis (SET NX with a TTL,
released when the call is done; the TTL frees the claims of a janitor that died mid-sweep)."""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys
from veche.common.rooms_client import RoomsClient, RoomsUnavailable
from veche.common.roomstate import RoomState
from veche.common.timefmt import utcnow
from veche.janitor.metrics import (
    PARTICIPANTS_TIMED_OUT,
    PRESENCE_SEEDED,
    ROOMS_DELETED,
    ROOMS_EXPIRED,
    TIMEOUTS_SUSPENDED,
)
from veche.janitor.settings import JanitorSettings

log = logging.getLogger("veche.janitor.sweeps")

# How long a claim holds when its janitor never releases it (it died mid-sweep).
CLAIM_TTL_MS = 60_000

T = TypeVar("T")

# Deletes the claims that still carry this janitor's token (one may have expired and been
# taken by another replica since: that one is not ours to release).
_RELEASE = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    released = released + 1
  end
end
return released
"""


@asynccontextmanager
async def claimed(redis: aioredis.Redis, kind: str, ids: list[UUID]) -> AsyncIterator[set[UUID]]:
    """The ids no other janitor holds, held by this one until the block ends."""
    if not ids:
        yield set()
        return
    token = uuid.uuid4().hex
    names = [keys.janitor_claim(kind, item) for item in ids]
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.set(name, token, nx=True, px=CLAIM_TTL_MS)
        answers = await pipe.execute()
    mine = {item for item, ok in zip(ids, answers, strict=True) if ok}
    try:
        yield mine
    finally:
        held = [name for name, ok in zip(names, answers, strict=True) if ok]
        if held:
            try:
                await redis.eval(_RELEASE, len(held), *held, token)
            except aioredis.RedisError as exc:  # the TTL frees them
                log.warning("could not release %d claims: %s", len(held), exc)


async def _bounded(items: Iterable[T], action: Callable[[T], Awaitable[bool]], concurrency: int) -> int:
    """Runs action on every item, at most `concurrency` at once; counts the True answers.
    A failure of one item is logged and does not stop the others."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> bool:
        async with gate:
            try:
                return await action(item)
            except RoomsUnavailable as exc:
                log.warning("rooms could not act: %s", exc)
                return False

    results = await asyncio.gather(*(one(item) for item in items))
    return sum(results)


async def expire_empty_rooms(redis: aioredis.Redis, rooms: RoomsClient, settings: JanitorSettings) -> int:
    """Has rooms end the rooms whose empty-room expiry has passed; returns how many ended."""
    due = await rooms.due_rooms(settings.janitor_sweep_batch)
    async with claimed(redis, "expire", due) as mine:
        ended = await _bounded(
            [room_id for room_id in due if room_id in mine],
            rooms.expire,
            settings.janitor_sweep_concurrency,
        )
    ROOMS_EXPIRED.inc(ended)
    return ended


async def _idle_among(
    redis: aioredis.Redis, members: list[tuple[UUID, UUID]], idle_since_ms: int
) -> tuple[list[tuple[tuple[UUID, UUID], int]], int]:
    """The (member, room) pairs whose last sign of life in Redis is older than idle_since_ms,
    each with that sign's time, and how many of `members` showed life since. A member with no
    sign recorded at all is not idle but unknown (Redis lost its data): it is seeded as seen
    now, and times out one presence timeout later if it really is gone."""
    state = RoomState(redis)
    scores = await state.last_seen_many([(room_id, public_id) for public_id, room_id in members])
    unknown = [
        (room_id, public_id)
        for (public_id, room_id), score in zip(members, scores, strict=True)
        if score is None
    ]
    if unknown:
        await state.seed_presence(unknown)
        PRESENCE_SEEDED.inc(len(unknown))
    idle = [
        (member, score)
        for member, score in zip(members, scores, strict=True)
        if score is not None and score < idle_since_ms
    ]
    alive = sum(1 for score in scores if score is not None and score >= idle_since_ms)
    return idle, alive


async def _presence_is_kept(redis: aioredis.Redis, settings: JanitorSettings) -> bool:
    """Whether some chat replica kept presence lately, and had kept it for a presence timeout
    before. Chat sockets are where most signs of life come from: while no replica refreshes
    them, silence means chat is down, not that everyone left."""
    # Kept lately, by a replica that has kept it for a whole timeout: one that just came back
    # after an outage has not yet heard from members whose sockets are still reconnecting.
    window_ms = int(settings.presence_timeout_seconds * 1000)
    now = int(time.time() * 1000)
    return await RoomState(redis).live_keepers(now - window_ms, established_before_ms=now - window_ms) > 0


async def time_out_vanished(redis: aioredis.Redis, rooms: RoomsClient, settings: JanitorSettings) -> int:
    """Has rooms mark left (reason `timeout`) the active members with no LiveKit connection and
    no request or chat-socket heartbeat for PRESENCE_TIMEOUT_SECONDS; returns how many.

    An infrastructure failure must never look like everyone leaving, so nobody is timed out
    while no chat replica keeps presence, nor when an implausible share of the members fell
    silent together (more than PRESENCE_MASS_TIMEOUT_SHARE of those who fell silent within the
    last timeout and those still alive, and at least PRESENCE_MASS_TIMEOUT_MIN): the sweep is
    skipped, counted and logged as an error."""
    if not await _presence_is_kept(redis, settings):
        TIMEOUTS_SUSPENDED.labels("no_presence_keeper").inc()
        log.error("no chat replica keeps presence: member time-outs suspended")
        return 0
    idle_since_ms = int((time.time() - settings.presence_timeout_seconds) * 1000)
    cutoff = datetime.fromtimestamp(idle_since_ms / 1000, tz=UTC)
    after: tuple[datetime, UUID] | None = None
    alive = 0
    idle: list[tuple[tuple[UUID, UUID], int]] = []
    while True:
        # Every candidate is looked at, page by page: the oldest members are most often
        # alive, and must not hide the vanished ones behind a LIMIT.
        page = await rooms.unconnected_members(cutoff, after, settings.janitor_sweep_batch)
        if not page:
            break
        after = (page[-1].joined_at, page[-1].public_id)
        page_idle, page_alive = await _idle_among(
            redis, [(m.public_id, m.room_id) for m in page], idle_since_ms
        )
        idle += page_idle
        alive += page_alive
        if len(page) < settings.janitor_sweep_batch:
            break
    # A platform fault silences many members at once: those who fell silent within the last
    # timeout, set against those still alive. (Members silent for long, the backlog of a
    # janitor that was down, are ordinary leavers.)
    window_ms = int(settings.presence_timeout_seconds * 1000)
    newly = sum(1 for _, seen in idle if seen >= idle_since_ms - window_ms)
    if newly >= settings.presence_mass_timeout_min and newly > settings.presence_mass_timeout_share * (
        newly + alive
    ):
        TIMEOUTS_SUSPENDED.labels("implausible_share").inc()
        log.error(
            "a sweep would time out %d members who fell silent together (%d alive): "
            "suspended as a platform fault",
            newly,
            alive,
        )
        return 0
    timed_out = 0
    members = [member for member, _ in idle]
    async with claimed(redis, "timeout", [public_id for public_id, _ in members]) as mine:
        timed_out += await _bounded(
            [(public_id, room_id) for public_id, room_id in members if public_id in mine],
            lambda member: rooms.time_out(member[1], member[0], idle_since_ms),
            settings.janitor_sweep_concurrency,
        )
    PARTICIPANTS_TIMED_OUT.inc(timed_out)
    return timed_out


async def delete_old_rooms(rooms: RoomsClient, settings: JanitorSettings) -> int:
    """Has rooms delete the rooms ended more than ROOM_RETENTION_DAYS ago, with their
    memberships (IP addresses and user agents included); returns how many. Rooms lets one
    such pass run at a time: a replica that finds one running gets 0."""
    deleted = await rooms.delete_ended_before(utcnow() - timedelta(days=settings.room_retention_days))
    ROOMS_DELETED.inc(deleted)
    return deleted
