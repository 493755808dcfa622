"""An infrastructure failure never looks like everyone leaving: missing presence is unknown (and
seeded), not idle; nobody is timed out while no chat replica keeps presence, nor when a sweep
would time out an implausible share of its candidates. The sweep runs on the real Redis of this
run with rooms' side played by a recorder; rooms' own rule is checked against a real rooms."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from tests.janitor.support import PRESENCE_TIMEOUT_SECONDS, create_room, join, member_row
from tests.support import hdr
from veche.common import keys
from veche.common.rooms_client import SweepMember
from veche.common.roomstate import RoomState
from veche.janitor import sweeps
from veche.janitor.settings import JanitorSettings


class RecordingRooms:
    """Rooms as the sweep sees it: a list of candidates, and the time-outs asked for."""

    def __init__(self, members: list[SweepMember]) -> None:
        self.members = members
        self.timed_out: list[UUID] = []

    async def unconnected_members(
        self, joined_before: datetime, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[SweepMember]:
        ordered = sorted(self.members, key=lambda m: (m.joined_at, m.public_id))
        if after is not None:
            ordered = [m for m in ordered if (m.joined_at, m.public_id) > after]
        return ordered[:limit]

    async def time_out(self, room_id: UUID, public_id: UUID, idle_since_ms: int) -> bool:
        self.timed_out.append(public_id)
        return True


@pytest.fixture
async def redis(monkeypatch: pytest.MonkeyPatch, redis_client) -> AsyncIterator[aioredis.Redis]:
    # A keepers set of this test's own: the chat replicas of other tests keep theirs.
    name = f"presence:{{keepers-{uuid.uuid4().hex}}}"
    monkeypatch.setattr(keys, "presence_keepers", lambda: name)
    monkeypatch.setattr(keys, "presence_keepers_since", lambda: f"{name}:since")
    yield redis_client
    await redis_client.delete(name, f"{name}:since")


async def _keeper(redis: aioredis.Redis, replica: str = "chat-replica-1", kept_for: float = 60) -> None:
    """A chat replica keeping presence now, and since `kept_for` seconds."""
    await RoomState(redis).keeper_alive(replica)
    await redis.zadd(keys.presence_keepers_since(), {replica: int((time.time() - kept_for) * 1000)})


def _settings(**overrides: object) -> JanitorSettings:
    return JanitorSettings(presence_timeout_seconds=3, presence_refresh_seconds=1, **overrides)


def _members(n: int) -> list[SweepMember]:
    joined = datetime.fromtimestamp(time.time() - 60, tz=UTC)
    room = uuid.uuid4()
    return [SweepMember(public_id=uuid.uuid4(), room_id=room, joined_at=joined) for _ in range(n)]


async def _seen(redis: aioredis.Redis, members: list[SweepMember], seconds_ago: float) -> None:
    stamp = int((time.time() - seconds_ago) * 1000)
    for m in members:
        await redis.zadd(keys.room_presence(m.room_id), {str(m.public_id): stamp})


def _suspended(reason: str) -> float:
    return REGISTRY.get_sample_value("veche_janitor_timeouts_suspended_total", {"reason": reason}) or 0.0


async def test_no_time_outs_while_no_chat_replica_keeps_presence(redis):
    members = _members(3)
    await _seen(redis, members, seconds_ago=60)
    rooms = RecordingRooms(members)
    before = _suspended("no_presence_keeper")
    assert await sweeps.time_out_vanished(redis, rooms, _settings()) == 0  # type: ignore[arg-type]
    assert rooms.timed_out == []
    assert _suspended("no_presence_keeper") == before + 1

    # A replica that just came back does not count yet: the members' sockets may still be
    # reconnecting to it.
    await RoomState(redis).keeper_alive("chat-replica-1")
    assert await sweeps.time_out_vanished(redis, rooms, _settings()) == 0  # type: ignore[arg-type]
    assert _suspended("no_presence_keeper") == before + 2

    # Once it has kept presence for a whole timeout, the silent members go.
    await _keeper(redis)
    assert await sweeps.time_out_vanished(redis, rooms, _settings()) == 3  # type: ignore[arg-type]
    assert sorted(rooms.timed_out) == sorted(m.public_id for m in members)


async def test_missing_presence_is_seeded_as_seen_now_not_taken_for_idle(redis):
    await _keeper(redis)
    silent, lost = _members(1), _members(2)
    await _seen(redis, silent, seconds_ago=60)
    rooms = RecordingRooms(silent + lost)  # `lost`: Redis restarted without their scores
    assert await sweeps.time_out_vanished(redis, rooms, _settings()) == 1  # type: ignore[arg-type]
    assert rooms.timed_out == [silent[0].public_id]
    scores = await RoomState(redis).last_seen_many([(m.room_id, m.public_id) for m in lost])
    assert all(score is not None and abs(score - time.time() * 1000) < 5000 for score in scores)

    # Seeded, not immune: one presence timeout later, still silent, they go too.
    await _seen(redis, lost, seconds_ago=60)
    assert await sweeps.time_out_vanished(redis, rooms, _settings()) == 3  # type: ignore[arg-type]
    assert {m.public_id for m in lost} <= set(rooms.timed_out)


async def test_a_sweep_that_would_time_out_most_members_is_suspended(redis):
    await _keeper(redis)
    members = _members(25)
    # Everyone fell silent together just now: a platform fault, not 25 leaving at once.
    await _seen(redis, members, seconds_ago=4)
    rooms = RecordingRooms(members)
    before = _suspended("implausible_share")
    settings = _settings(presence_mass_timeout_min=20, presence_mass_timeout_share=0.5)
    assert await sweeps.time_out_vanished(redis, rooms, settings) == 0  # type: ignore[arg-type]
    assert rooms.timed_out == []
    assert _suspended("implausible_share") == before + 1

    # A few silent among many alive is the ordinary case.
    await _seen(redis, members[5:], seconds_ago=0)
    assert await sweeps.time_out_vanished(redis, rooms, settings) == 5  # type: ignore[arg-type]
    assert sorted(rooms.timed_out) == sorted(m.public_id for m in members[:5])


async def test_long_silent_members_are_no_platform_fault(redis):
    """The backlog of a janitor that was down (members silent for long, at different times)
    is timed out, however many they are."""
    await _keeper(redis)
    members = _members(25)
    await _seen(redis, members, seconds_ago=60)
    rooms = RecordingRooms(members)
    settings = _settings(presence_mass_timeout_min=20, presence_mass_timeout_share=0.5)
    assert await sweeps.time_out_vanished(redis, rooms, settings) == 25  # type: ignore[arg-type]


async def test_rooms_never_times_out_a_member_whose_presence_redis_lost(jstack, rooms_api, jdb, redis_client):
    room_id, host, _ = await create_room(rooms_api, "Lost presence")
    _, bob_public = await join(rooms_api, room_id, "Bob")
    await redis_client.zrem(keys.room_presence(room_id), bob_public)  # Redis lost it
    await asyncio.sleep(PRESENCE_TIMEOUT_SECONDS + 0.5)  # Bob joined long enough ago to be a candidate
    await redis_client.zrem(keys.room_presence(room_id), bob_public)  # the janitors may have seeded it
    idle_since = int(time.time() * 1000)
    url = f"/internal/v1/rooms/{room_id}/participants/{bob_public}/timeout"
    answer = await rooms_api.post(url, json={"idle_since_ms": idle_since})
    assert answer.status_code == 200, answer.text
    assert answer.json()["left"] is False
    assert (await member_row(jdb, bob_public))["left_at"] is None
    # Seeded as seen now: Bob gets a whole presence timeout to show life.
    score = await redis_client.zscore(keys.room_presence(room_id), bob_public)
    assert score is not None and abs(score - time.time() * 1000) < 5000
    await rooms_api.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(host))
