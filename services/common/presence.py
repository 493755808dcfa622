"""Signs of life of room members, kept cheaply in Redis for the janitor to read."""

import time
from uuid import UUID

import redis.asyncio as aioredis

from common import keys

PRESENCE_KEY_TTL_SECONDS = 6 * 3600


async def touch(redis: aioredis.Redis, room_id: UUID | str, public_id: UUID | str) -> None:
    key = keys.room_presence(room_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {str(public_id): int(time.time() * 1000)})
        pipe.expire(key, PRESENCE_KEY_TTL_SECONDS)
        await pipe.execute()
