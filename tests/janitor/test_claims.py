"""Janitor replicas split a sweep's candidates through claims in Redis."""

import asyncio
import uuid

from veche.common import keys
from veche.janitor.sweeps import claimed


async def test_racing_claims_split_the_candidates_and_are_released_after(redis_client):
    ids = [uuid.uuid4() for _ in range(40)]
    gate = asyncio.Event()
    both = asyncio.Barrier(3)
    held: list[set[uuid.UUID]] = []

    async def replica(order: list[uuid.UUID]) -> None:
        async with claimed(redis_client, "test", order) as mine:
            held.append(mine)
            await both.wait()
            await gate.wait()  # both hold their claims at once

    tasks = [asyncio.create_task(replica(ids)), asyncio.create_task(replica(ids[::-1]))]
    await asyncio.wait_for(both.wait(), 10)
    first, second = held
    assert not first & second
    assert first | second == set(ids)
    ttl = await redis_client.pttl(keys.janitor_claim("test", ids[0]))
    assert 0 < ttl <= 60_000
    gate.set()
    await asyncio.gather(*tasks)
    assert not any([await redis_client.exists(keys.janitor_claim("test", i)) for i in ids])


async def test_a_janitor_releases_only_the_claims_it_still_holds(redis_client):
    item = uuid.uuid4()
    name = keys.janitor_claim("test", item)
    async with claimed(redis_client, "test", [item]) as mine:
        assert mine == {item}
        # Its claim expired and another replica took the item meanwhile.
        await redis_client.set(name, "another-replica", px=60_000)
    assert await redis_client.get(name) == "another-replica"
    async with claimed(redis_client, "test", [item]) as mine:
        assert mine == set()
    await redis_client.delete(name)
