"""Rooms on a Redis of the test's own that it kills, freezes and brings back: a join that
committed answers 201 and its membership reaches Redis once Redis is back; a leave whose Redis
write hangs under the room's row lock fails fast with 503 and changes nothing."""

import asyncio
import signal
import time

import redis.asyncio as aioredis

from tests.support import app_client, hdr, new_pid
from veche.common import keys
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings


def _settings(url: str) -> RoomsSettings:
    return RoomsSettings(redis_url=url, rate_limits_enabled=False, dependency_timeout_seconds=1)


async def _active(db, public_id: str) -> bool:  # type: ignore[no-untyped-def]
    row = await db.fetchrow("SELECT left_at FROM room_participants WHERE id = $1::uuid", public_id)
    return row is not None and row["left_at"] is None


async def test_a_committed_join_answers_201_and_reaches_redis_when_it_is_back(own_redis, db):
    async with app_client(create_app(_settings(own_redis.url))) as api:
        host = new_pid()
        created = await api.post("/api/v1/rooms", json={"title": "Redis goes"}, headers=hdr(host))
        assert created.status_code == 201, created.text
        room_id = created.json()["room"]["id"]

        own_redis.kill()
        guest = new_pid()
        joined = await api.post(
            f"/api/v1/rooms/{room_id}/join", json={"display_name": "Gleb"}, headers=hdr(guest)
        )
        # Committed and announced: a real membership, whatever Redis said afterwards.
        assert joined.status_code == 201, joined.text
        assert await _active(db, joined.json()["id"])

        own_redis.start()  # back, and empty
        client = aioredis.from_url(own_redis.url, decode_responses=True)
        try:
            deadline = time.monotonic() + 15
            while not await client.hexists(keys.room_participants(room_id), guest):
                assert time.monotonic() < deadline, "the membership never reached Redis"
                await asyncio.sleep(0.2)
            # Everyone of the room is back, each with a presence timeout from now.
            assert await client.hexists(keys.room_participants(room_id), host)
            assert await client.zscore(keys.room_presence(room_id), joined.json()["id"]) is not None
        finally:
            await client.aclose()


async def test_a_leave_while_redis_is_frozen_fails_fast_and_changes_nothing(own_redis, db):
    async with app_client(create_app(_settings(own_redis.url))) as api:
        host = new_pid()
        created = await api.post("/api/v1/rooms", json={"title": "Redis freezes"}, headers=hdr(host))
        room_id = created.json()["room"]["id"]
        guest = new_pid()
        joined = await api.post(
            f"/api/v1/rooms/{room_id}/join", json={"display_name": "Gleb"}, headers=hdr(guest)
        )
        public_id = joined.json()["id"]

        own_redis.signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            left = await api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(guest))
            took = time.monotonic() - started
        finally:
            own_redis.signal(signal.SIGCONT)
        assert left.status_code == 503, left.text
        assert left.headers["content-type"] == "application/problem+json"
        assert took < 2.0, f"the leave held the room for {took:.1f} s"
        assert await _active(db, public_id), "a failed leave was committed"

        # Redis back: the same leave goes through.
        again = await api.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(guest))
        assert again.status_code == 204, again.text
        assert not await _active(db, public_id)


async def test_after_a_redis_restart_no_request_fails_on_a_stale_connection(own_redis):
    settings = RoomsSettings(redis_url=own_redis.url, dependency_timeout_seconds=1)  # limits on
    async with app_client(create_app(settings)) as api:
        host = new_pid()
        created = await api.post("/api/v1/rooms", json={"title": "Restarted"}, headers=hdr(host))
        room_id = created.json()["room"]["id"]
        # Every pooled connection (the API's and the rate limiter's) in use at least once.
        first = await asyncio.gather(*(api.get(f"/api/v1/rooms/{room_id}") for _ in range(10)))
        assert {r.status_code for r in first} == {200}

        own_redis.kill()
        own_redis.start()  # the same port, its data from the append-only file
        after = await asyncio.gather(*(api.get(f"/api/v1/rooms/{room_id}") for _ in range(10)))
        joined = await api.post(
            f"/api/v1/rooms/{room_id}/join", json={"display_name": "Gleb"}, headers=hdr(new_pid())
        )
    assert [r.status_code for r in after] == [200] * 10, [r.text for r in after if r.status_code != 200]
    assert joined.status_code == 201, joined.text
