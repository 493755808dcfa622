"""The join in one statement (migration 0005, RoomsService._join_at_once) under concurrency:
joins racing for the last seats never overfill a room, one identity joining many times at once
gets one membership, every new membership announces itself once, and whichever replica a join
lands on, the leading relay is woken (NOTIFY from a replica that does not lead, in-process on
the one that does)."""

import asyncio
import json
import os
import uuid
from contextlib import AsyncExitStack

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.support import app_client, eventually, hdr, new_pid
from veche.common import keys
from veche.rooms.main import create_app
from veche.rooms.outbox import NOTIFY_CHANNEL, OutboxRelay
from veche.rooms.settings import RoomsSettings


async def _room(api: httpx.AsyncClient, max_participants: int) -> tuple[str, str]:
    host = new_pid()
    created = await api.post(
        "/api/v1/rooms", json={"title": "Race", "max_participants": max_participants}, headers=hdr(host)
    )
    assert created.status_code == 201, created.text
    return host, created.json()["room"]["id"]


def _join(api: httpx.AsyncClient, rid: str, pid: str, name: str = "Racer"):  # type: ignore[no-untyped-def]
    return api.post(f"/api/v1/rooms/{rid}/join", json={"display_name": name}, headers=hdr(pid))


async def _joined_events(db: asyncpg.Connection, rid: str) -> list[dict[str, object]]:
    rows = await db.fetch(
        "SELECT payload FROM outbox WHERE subject = $1 ORDER BY seq",
        f"{os.environ['NATS_SUBJECT_PREFIX']}.{rid}.participant.joined",
    )
    return [json.loads(row["payload"]) for row in rows]


async def test_joins_racing_for_the_last_seats_fill_the_room_exactly(api, db):
    host, rid = await _room(api, max_participants=6)
    pids = [new_pid() for _ in range(20)]
    answers = await asyncio.gather(*(_join(api, rid, pid) for pid in pids))

    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 5 + [409] * 15, [r.text for r in answers]
    assert all(r.json()["code"] == "room_full" for r in answers if r.status_code == 409)
    active = await db.fetchval(
        "SELECT count(*) FROM room_participants WHERE room_id = $1 AND left_at IS NULL", uuid.UUID(rid)
    )
    assert active == 6
    # One participant.joined per membership (the host's and the five), nothing for a refusal.
    admitted = {r.json()["id"] for r in answers if r.status_code == 201}
    announced = [event["participant"]["id"] for event in await _joined_events(db, rid)]  # type: ignore[index]
    assert len(announced) == 6 and admitted <= set(announced)
    # Each admitted member is in the room's hash, as the join answered it.
    client = aioredis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    try:
        stored = await client.hgetall(keys.room_participants(rid))
    finally:
        await client.aclose()
    winners = [(pid, r.json()) for pid, r in zip(pids, answers, strict=True) if r.status_code == 201]
    for pid, me in winners:
        assert json.loads(stored[pid])["id"] == me["id"]
    assert host in stored and len([k for k in stored if not k.startswith("~")]) == 6


async def test_one_identity_joining_many_times_at_once_gets_one_membership(api, db):
    _, rid = await _room(api, max_participants=10)
    pid = new_pid()
    answers = await asyncio.gather(*(_join(api, rid, pid, f"Twin {i}") for i in range(8)))

    assert sorted(r.status_code for r in answers) == [200] * 7 + [201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    rows = await db.fetch(
        "SELECT id, display_name FROM room_participants WHERE room_id = $1 AND participant_id = $2",
        uuid.UUID(rid),
        pid,
    )
    assert len(rows) == 1
    # The name of the last join to commit; each answer carried the name it set.
    assert rows[0]["display_name"].startswith("Twin ")
    announced = [e for e in await _joined_events(db, rid) if e["participant"]["id"] == str(rows[0]["id"])]  # type: ignore[index]
    assert len(announced) == 1


async def test_the_event_of_a_join_is_the_membership_it_answered(api, db):
    host, rid = await _room(api, max_participants=5)
    anna = new_pid()
    me = (await _join(api, rid, anna, "Anna")).json()
    # A former host comes back as host: the gate sets the role of the membership and its event.
    await api.post(f"/api/v1/rooms/{rid}/leave", headers=hdr(host))
    back = await _join(api, rid, host, "Host again")
    assert back.status_code == 201 and back.json()["role"] == "host"

    events = {e["participant"]["id"]: e for e in await _joined_events(db, rid)}  # type: ignore[index]
    anna_event = events[me["id"]]
    assert anna_event["participant"] == {
        "id": me["id"],
        "display_name": "Anna",
        "role": "participant",
        "joined_at": me["joined_at"],
        "livekit_sid": None,
        "hand_raised_at": None,
    }
    assert anna_event["room_id"] == rid and anna_event["occurred_at"] == me["joined_at"]
    assert events[back.json()["id"]]["participant"]["role"] == "host"  # type: ignore[index]
    # The stored address and agent of the new membership, as the ORM path stores them.
    row = await db.fetchrow(
        "SELECT client_ip, user_agent FROM room_participants WHERE id = $1", uuid.UUID(me["id"])
    )
    assert str(row["client_ip"]) == "198.51.100.7"
    assert row["user_agent"]


def _relay(client: httpx.AsyncClient) -> OutboxRelay:
    return client._transport.app.state.ctx.relay  # type: ignore[attr-defined,no-any-return]


async def test_a_join_wakes_the_leading_relay_from_either_replica(own_database):
    settings = RoomsSettings(database_url=own_database, outbox_poll_seconds=1.0)
    db = await asyncpg.connect(own_database.replace("postgresql+asyncpg", "postgresql"))
    listener = await asyncpg.connect(own_database.replace("postgresql+asyncpg", "postgresql"))
    notified: list[str] = []
    await listener.add_listener(NOTIFY_CHANNEL, lambda *args: notified.append(args[1]))
    stacks = [AsyncExitStack(), AsyncExitStack()]
    try:
        apps = [await stack.enter_async_context(app_client(create_app(settings))) for stack in stacks]

        async def one_leads() -> bool:
            return [_relay(app).leading for app in apps].count(True) == 1

        await eventually(one_leads, timeout=20)
        leader, follower = (apps[0], apps[1]) if _relay(apps[0]).leading else (apps[1], apps[0])
        _, rid = await _room(leader, max_participants=5)

        async def published() -> bool:
            return await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await eventually(published)
        await asyncio.sleep(0.5)
        before = len(notified)

        # On the leader's own replica: woken in-process, no NOTIFY.
        assert (await _join(leader, rid, new_pid())).status_code == 201
        await eventually(published)
        await asyncio.sleep(0.5)
        assert len(notified) == before

        # On the other replica: NOTIFY at its commit wakes the leader.
        assert (await _join(follower, rid, new_pid())).status_code == 201
        await eventually(lambda: _true(len(notified) > before), timeout=5)
        await eventually(published)
    finally:
        for stack in stacks:
            await stack.aclose()
        await listener.close()
        await db.close()


async def _true(value: bool) -> bool:
    return value
