"""Signs of life of room members, kept cheaply in Redis for the janitor to read."""

import time
from uuid import UUID

import redis.asyncio as aioredis

from veche.common import keys

PRESENCE_KEY_TTL_SECONDS = 6 * 3600


async def touch(redis: aioredis.Redis, room_id: UUID | str, public_id: UUID | str) -> None:
    key = keys.room_presence(room_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {str(public_id): int(time.time() * 1000)})
        pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
        await pipe.execute()


async def last_seen(redis: aioredis.Redis, room_id: UUID | str, public_id: UUID | str) -> int | None:
    """Epoch ms of the member's last sign of life, or None when none was recorded."""
    score = await redis.zscore(keys.room_presence(room_id), str(public_id))
    return int(score) if score is not None else None
