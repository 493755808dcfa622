"""Several rooms replicas, one event order: under join/leave churn through two rooms apps (each
with its relay), and with the leading one stopped halfway, every room's events reach JetStream
exactly once and in commit order."""

import asyncio
import os
import random
from contextlib import AsyncExitStack

import asyncpg
import httpx

from tests.support import EventReader, app_client, eventually, hdr, new_pid
from veche.rooms.main import create_app
from veche.rooms.outbox import OutboxRelay
from veche.rooms.settings import RoomsSettings

ROOMS = 4
MEMBERS = 5
ROUNDS = 6


def relay_of(client: httpx.AsyncClient) -> OutboxRelay:
    return client._transport.app.state.ctx.relay  # type: ignore[attr-defined]


async def test_two_relays_keep_each_rooms_order_under_churn_and_a_lost_leader(own_database):
    settings = RoomsSettings(
        database_url=own_database, outbox_poll_seconds=0.2, rate_limit_join="100000/minute"
    )
    db = await asyncpg.connect(own_database.replace("postgresql+asyncpg", "postgresql"))
    stacks = [AsyncExitStack(), AsyncExitStack()]
    try:
        apps = [await stack.enter_async_context(app_client(create_app(settings))) for stack in stacks]
        relays = [relay_of(app) for app in apps]

        async def one_leads():
            return [relay.leading for relay in relays].count(True) == 1

        await eventually(one_leads, timeout=15)

        both_led = False

        async def watch() -> None:
            nonlocal both_led
            while True:
                if all(relay.leading for relay in relays):
                    both_led = True
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        hosts = [new_pid() for _ in range(ROOMS)]
        room_ids = []
        for i, host in enumerate(hosts):
            created = await apps[i % 2].post("/api/v1/rooms", json={"title": f"Churn {i}"}, headers=hdr(host))
            assert created.status_code == 201, created.text
            room_ids.append(created.json()["room"]["id"])

        live = list(apps)

        async def member(room_id: str) -> None:
            pid = new_pid()
            for _ in range(ROUNDS):
                # Each step through either replica, whichever is still running.
                joined = await random.choice(live).post(
                    f"/api/v1/rooms/{room_id}/join", json={"display_name": "Churner"}, headers=hdr(pid)
                )
                assert joined.status_code in (200, 201), joined.text
                left = await random.choice(live).post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(pid))
                assert left.status_code == 204, left.text

        async def lose_the_leader() -> None:
            await asyncio.sleep(0.5)
            leader = next(i for i, relay in enumerate(relays) if relay.leading)
            live.remove(apps[leader])
            await stacks[leader].aclose()  # its lock connection closes with it

        await asyncio.gather(
            *(member(room_id) for room_id in room_ids for _ in range(MEMBERS)), lose_the_leader()
        )
        survivor = relays[0] if apps[0] in live else relays[1]

        async def all_published():
            return await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await eventually(all_published, timeout=30)
        assert survivor.leading
        watcher.cancel()
        assert not both_led, "two relays led at once"

        prefix = os.environ["NATS_SUBJECT_PREFIX"]
        async with EventReader() as reader:
            for room_id in room_ids:
                committed = [
                    str(row["event_id"])
                    for row in await db.fetch(
                        "SELECT event_id FROM outbox WHERE subject LIKE $1 ORDER BY seq",
                        f"{prefix}.{room_id}.%",
                    )
                ]
                assert len(committed) == 1 + 1 + 2 * MEMBERS * ROUNDS
                events = await reader.read_room(room_id, expected=len(committed))
                await asyncio.sleep(0.3)
                events = await reader.read_room(room_id, expected=len(committed))
                # Exactly once each, in the order the room's transactions committed.
                assert [body["event_id"] for _, _, body in events] == committed
    finally:
        for stack in stacks:
            await stack.aclose()
        await db.close()
