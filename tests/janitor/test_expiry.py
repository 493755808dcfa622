"""Empty rooms: the last leave starts the expiry, the janitor ends the room after the TTL and
deletes every Redis key of it; a join before the TTL cancels the expiry."""

import asyncio
import time
from datetime import datetime

from tests.janitor.support import (
    ROOM_EMPTY_TTL_SECONDS,
    SWEEP_INTERVAL_SECONDS,
    create_room,
    join,
    keep_alive,
    room_keys,
    room_row,
)
from tests.support import EventReader, eventually, hdr, new_pid
from veche.common.ratelimit import RateLimits, room_limit_key
from veche.janitor.settings import JanitorSettings


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


async def test_last_leave_sets_expires_at_and_the_room_ends_after_the_ttl_with_all_its_keys_gone(
    rooms_api, jdb, redis_client
):
    room_id, host, _ = await create_room(rooms_api, "Left alone")
    # Keys the other services keep for a room: chat history, its per-room rate-limit counter.
    await redis_client.zadd(f"chat:room:{{{room_id}}}:messages", {'{"content": "hi"}': 1})
    limits = RateLimits(JanitorSettings())
    await limits.hit("room", limits.settings.rate_limit_room, room_id)
    rate_key = room_limit_key(limits.settings, room_id)
    assert await redis_client.exists(rate_key)

    left_at = time.time()
    assert (await rooms_api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(host))).status_code == 204
    room = (await rooms_api.get(f"/api/v1/rooms/{room_id}")).json()
    assert room["status"] == "active"
    assert room["participant_count"] == 0
    assert room["expires_at"] is not None
    assert abs(_ts(room["expires_at"]) - (left_at + ROOM_EMPTY_TTL_SECONDS)) < 1.0

    # Read from PostgreSQL, not the API: a GET would write the room's cache key again.
    async def ended():
        row = await room_row(jdb, room_id)
        return row if row["status"] == "ended" else None

    row = await eventually(ended, timeout=15)
    assert row["ended_at"].timestamp() >= _ts(room["expires_at"])
    assert row["expires_at"] is None

    async def no_keys():
        return not await room_keys(redis_client, room_id) and not await redis_client.exists(rate_key)

    await eventually(no_keys, timeout=15)

    async with EventReader() as reader:
        await reader.read_room(room_id, expected=4)
        await asyncio.sleep(1.0)  # a second room.ended would be there by now
        events = await reader.read_room(room_id, expected=4)
    types = [body["type"] for _, _, body in events]
    assert types.count("room.ended") == 1
    left = [body for _, _, body in events if body["type"] == "participant.left"]
    assert [body["reason"] for body in left] == ["left"]

    final = (await rooms_api.get(f"/api/v1/rooms/{room_id}")).json()
    assert final["status"] == "ended"
    assert (await rooms_api.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": "Late"})).json()[
        "code"
    ] == "room_ended"


async def test_a_join_before_the_ttl_cancels_the_expiry(rooms_api, jdb):
    room_id, host, _ = await create_room(rooms_api, "Back in time")
    await rooms_api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(host))
    assert (await room_row(jdb, room_id))["expires_at"] is not None

    guest, _ = await join(rooms_api, room_id, "Guest")
    room = (await rooms_api.get(f"/api/v1/rooms/{room_id}", headers=hdr(guest))).json()
    assert room["expires_at"] is None
    assert room["participant_count"] == 1

    # Past the TTL and many sweeps, with the guest present all along.
    stop = asyncio.Event()
    alive = asyncio.create_task(keep_alive(rooms_api, room_id, guest, stop))
    await asyncio.sleep(ROOM_EMPTY_TTL_SECONDS + 5 * SWEEP_INTERVAL_SECONDS + 0.5)
    stop.set()
    await alive

    row = await room_row(jdb, room_id)
    assert row["status"] == "active"
    assert row["expires_at"] is None
    async with EventReader() as reader:
        events = await reader.read_room(room_id, expected=4)
    assert "room.ended" not in [body["type"] for _, _, body in events]


async def test_a_join_racing_the_expiry_either_cancels_it_or_meets_an_ended_room(rooms_api, jdb):
    rooms = [await create_room(rooms_api, f"Photo finish {i}") for i in range(4)]
    for room_id, host, _ in rooms:
        await rooms_api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(host))
    guests = [new_pid() for _ in rooms]
    await asyncio.sleep(ROOM_EMPTY_TTL_SECONDS)  # due now: the janitors, these joins and
    answers = await asyncio.gather(
        *(  # these expire requests all race
            rooms_api.post(
                f"/api/v1/rooms/{room_id}/join",
                json={"display_name": "Just in time"},
                headers=hdr(guest),
            )
            for (room_id, _, _), guest in zip(rooms, guests, strict=True)
        ),
        *(rooms_api.post(f"/internal/v1/rooms/{room_id}/expire") for room_id, _, _ in rooms),
    )
    joins = answers[: len(rooms)]

    async with EventReader() as reader:
        for (room_id, _, _), joined, guest in zip(rooms, joins, guests, strict=True):
            row = await room_row(jdb, room_id)
            events = [b for _, _, b in await reader.read_room(room_id, expected=4)]
            types = [b["type"] for b in events]
            if joined.status_code == 201:  # the join won: the room lives on
                assert (row["status"], row["expires_at"]) == ("active", None)
                assert "room.ended" not in types
                assert types.count("participant.joined") == 2
                await rooms_api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(guest))
            else:  # the expiry won: the join meets an ended room
                assert joined.status_code == 409 and joined.json()["code"] == "room_ended"
                assert row["status"] == "ended"
                assert types.count("room.ended") == 1
                assert types.count("participant.joined") == 1
