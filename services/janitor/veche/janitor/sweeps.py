"""The janitor's sweeps: read-only SQL and presence reads find the candidates, rooms acts.

Rooms is the only writer of its tables and the only publisher of its events, and it re-checks
every request under the room row lock, so a repeated or racing request is a no-op. Janitor
replicas still split the work: each candidate is claimed with a transaction-level advisory
lock (the non-blocking cousin of FOR UPDATE SKIP LOCKED, which cannot be used here: a janitor
holding the room row would block rooms' own FOR UPDATE of it until the call timed out)."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

import redis.asyncio as aioredis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from veche.common.rooms_client import RoomsClient, RoomsUnavailable
from veche.common.roomstate import RoomState
from veche.common.timefmt import utcnow
from veche.janitor.metrics import PARTICIPANTS_TIMED_OUT, ROOMS_DELETED, ROOMS_EXPIRED
from veche.janitor.settings import JanitorSettings

log = logging.getLogger("veche.janitor.sweeps")

# First keys of the two-key advisory locks, one namespace per kind of claim.
EXPIRE_CLAIM = 0x4A01
TIMEOUT_CLAIM = 0x4A02
RETENTION_CLAIM = 0x4A03

T = TypeVar("T")


_CLAIM = text(
    "SELECT id FROM unnest(CAST(:ids AS uuid[])) AS id"
    " WHERE pg_try_advisory_xact_lock(:space, hashtext(id::text))"
)


@asynccontextmanager
async def claimed(engine: AsyncEngine, space: int, ids: list[UUID]) -> AsyncIterator[set[UUID]]:
    """The ids no other janitor holds, held by this one until the block ends."""
    if not ids:
        yield set()
        return
    async with engine.connect() as conn, conn.begin():
        rows = await conn.execute(_CLAIM, {"ids": ids, "space": space})
        yield {row.id for row in rows}


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


_DUE_ROOMS = text(
    "SELECT id FROM rooms WHERE status = 'active' AND expires_at <= :now ORDER BY expires_at LIMIT :batch"
)


async def expire_empty_rooms(engine: AsyncEngine, rooms: RoomsClient, settings: JanitorSettings) -> int:
    """Has rooms end the rooms whose empty-room expiry has passed; returns how many ended."""
    async with engine.connect() as conn:
        due = [
            row.id
            for row in await conn.execute(
                _DUE_ROOMS, {"now": utcnow(), "batch": settings.janitor_sweep_batch}
            )
        ]
    async with claimed(engine, EXPIRE_CLAIM, due) as mine:
        ended = await _bounded(
            [room_id for room_id in due if room_id in mine],
            rooms.expire,
            settings.janitor_sweep_concurrency,
        )
    ROOMS_EXPIRED.inc(ended)
    return ended


_ACTIVE_MEMBERS_PAGE = text(
    "SELECT p.id, p.room_id, p.joined_at FROM room_participants p"
    " JOIN rooms r ON r.id = p.room_id"
    " WHERE p.left_at IS NULL AND p.livekit_sid IS NULL AND r.status = 'active'"
    "   AND p.joined_at < :cutoff AND (p.joined_at, p.id) > (:after_joined, :after_id)"
    " ORDER BY p.joined_at, p.id LIMIT :batch"
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NIL = UUID(int=0)


async def _idle_among(
    redis: aioredis.Redis, members: list[tuple[UUID, UUID]], idle_since_ms: int
) -> list[tuple[UUID, UUID]]:
    """The (member, room) pairs with no sign of life in Redis since idle_since_ms."""
    scores = await RoomState(redis).last_seen_many([(room_id, public_id) for public_id, room_id in members])
    return [
        member
        for member, score in zip(members, scores, strict=True)
        if score is None or score < idle_since_ms
    ]


async def time_out_vanished(
    engine: AsyncEngine, redis: aioredis.Redis, rooms: RoomsClient, settings: JanitorSettings
) -> int:
    """Has rooms mark left (reason `timeout`) the active members with no LiveKit connection and
    no request or chat-socket heartbeat for PRESENCE_TIMEOUT_SECONDS; returns how many."""
    idle_since_ms = int((time.time() - settings.presence_timeout_seconds) * 1000)
    cutoff = datetime.fromtimestamp(idle_since_ms / 1000, tz=UTC)
    after: tuple[datetime, UUID] = (_EPOCH, _NIL)
    timed_out = 0
    while True:
        # Every active member is looked at, page by page: the oldest ones are most often
        # alive, and must not hide the vanished ones behind a LIMIT.
        async with engine.connect() as conn:
            page = (
                await conn.execute(
                    _ACTIVE_MEMBERS_PAGE,
                    {
                        "cutoff": cutoff,
                        "after_joined": after[0],
                        "after_id": after[1],
                        "batch": settings.janitor_sweep_batch,
                    },
                )
            ).all()
        if not page:
            break
        after = (page[-1].joined_at, page[-1].id)
        idle = await _idle_among(redis, [(row.id, row.room_id) for row in page], idle_since_ms)
        async with claimed(engine, TIMEOUT_CLAIM, [public_id for public_id, _ in idle]) as mine:
            timed_out += await _bounded(
                [(public_id, room_id) for public_id, room_id in idle if public_id in mine],
                lambda member: rooms.time_out(member[1], member[0], idle_since_ms),
                settings.janitor_sweep_concurrency,
            )
        if len(page) < settings.janitor_sweep_batch:
            break
    PARTICIPANTS_TIMED_OUT.inc(timed_out)
    return timed_out


_ANY_PAST_RETENTION = text(
    "SELECT EXISTS (SELECT 1 FROM rooms WHERE status = 'ended' AND ended_at < :cutoff)"
)
_RETENTION_CLAIM = text("SELECT pg_try_advisory_xact_lock(:space, 0)")


async def delete_old_rooms(engine: AsyncEngine, rooms: RoomsClient, settings: JanitorSettings) -> int:
    """Has rooms delete the rooms ended more than ROOM_RETENTION_DAYS ago, with their
    memberships (IP addresses and user agents included); returns how many."""
    cutoff = utcnow() - timedelta(days=settings.room_retention_days)
    async with engine.connect() as conn:
        if not (await conn.execute(_ANY_PAST_RETENTION, {"cutoff": cutoff})).scalar_one():
            return 0
    async with engine.connect() as conn, conn.begin():
        # One replica at a time: the others would only wait on the same rows.
        if not (await conn.execute(_RETENTION_CLAIM, {"space": RETENTION_CLAIM})).scalar_one():
            return 0
        deleted = await rooms.delete_ended_before(cutoff)
    ROOMS_DELETED.inc(deleted)
    return deleted
