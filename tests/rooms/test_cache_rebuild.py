"""PostgreSQL is the truth: when Redis loses a room's keys, the next reads rebuild them."""

import json

from tests.support import hdr, new_pid
from veche.common import keys
from veche.common.internal import internal_headers
from veche.common.membership import MembershipResolver
from veche.common.rooms_client import RoomsClient
from veche.common.roomstate import RoomState
from veche.common.settings import CommonSettings


async def _forget_room(redis, room_id: str) -> int:
    """What a Redis restart or FLUSHALL does to one room (other runs' keys stay alone)."""
    removed = 0
    for pattern in keys.all_room_key_patterns(room_id):
        async for key in redis.scan_iter(match=pattern):
            removed += await redis.delete(key)
    return removed


async def test_after_redis_loses_the_room_participants_and_membership_are_still_right(
    api, room, redis_client
):
    bob, bob_self = await room.join("Bob")
    carol, _ = await room.join("Carol")
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(carol))
    assert await _forget_room(redis_client, room.id) >= 2
    assert not await redis_client.exists(keys.room_participants(room.id))

    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert [p["display_name"] for p in listed] == ["Host", "Bob"]
    assert (await api.get(f"/api/v1/rooms/{room.id}")).json()["participant_count"] == 2

    # What chat and media-token do: the hash is missing, so rooms is asked and rebuilds it.
    transport_app = api._transport.app
    client = RoomsClient(CommonSettings(rooms_internal_url="http://rooms.internal"))
    # The rooms app under test, in-process, as the client's transport.
    client.http = type(api)(
        transport=api._transport, base_url="http://rooms.internal", headers=internal_headers(CommonSettings())
    )
    resolver = MembershipResolver(RoomState(redis_client), client)
    try:
        bob_view = await resolver.resolve(room.id, bob)
        assert bob_view.room_status == "active"
        assert bob_view.member is not None and str(bob_view.member.id) == bob_self["id"]
        carol_view = await resolver.resolve(room.id, carol)
        assert carol_view.member is None
        stranger = await resolver.resolve(room.id, new_pid())
        assert stranger.member is None
    finally:
        await resolver.close()
    assert transport_app is not None

    rebuilt = await redis_client.hgetall(keys.room_participants(room.id))
    assert rebuilt[keys.ROOM_STATUS_FIELD] == "active"
    assert set(rebuilt) == {keys.ROOM_STATUS_FIELD, keys.ROOM_E2EE_FIELD, room.host, bob}
    assert rebuilt[keys.ROOM_E2EE_FIELD] == "0"
    assert json.loads(rebuilt[bob])["display_name"] == "Bob"
    assert await redis_client.ttl(keys.room_participants(room.id)) > 0


async def test_membership_hash_is_written_before_join_returns_and_cleared_on_leave(api, room, redis_client):
    bob, bob_self = await room.join("Bob")
    stored = await redis_client.hget(keys.room_participants(room.id), bob)
    assert json.loads(stored) == {
        "id": bob_self["id"],
        "display_name": "Bob",
        "role": "participant",
        "joined_at": bob_self["joined_at"],
        "livekit_sid": None,
        "hand_raised_at": None,
    }
    assert 0 < await redis_client.ttl(keys.room_participants(room.id)) <= 6 * 3600
    await api.post(f"/api/v1/rooms/{room.id}/leave", headers=hdr(bob))
    assert await redis_client.hget(keys.room_participants(room.id), bob) is None


async def test_ending_marks_the_cached_room_ended_for_chat_and_media(api, room, redis_client):
    await room.join("Bob")
    await api.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host))
    cached = await redis_client.hgetall(keys.room_participants(room.id))
    assert cached == {keys.ROOM_STATUS_FIELD: "ended", keys.ROOM_E2EE_FIELD: "0"}


async def test_the_room_cache_is_invalidated_on_every_change(api, room, redis_client):
    first = (await api.get(f"/api/v1/rooms/{room.id}")).json()
    assert await redis_client.exists(keys.room_meta(room.id))
    await room.join("Bob")
    after = (await api.get(f"/api/v1/rooms/{room.id}")).json()
    assert after["participant_count"] == first["participant_count"] + 1


async def test_a_members_request_records_its_presence(api, room, redis_client):
    bob, bob_self = await room.join("Bob")
    await redis_client.delete(keys.room_presence(room.id))
    await api.get(f"/api/v1/rooms/{room.id}/participants", headers=hdr(bob))
    assert await redis_client.zscore(keys.room_presence(room.id), bob_self["id"]) is not None
    # A stranger's request records nothing.
    await api.get(f"/api/v1/rooms/{room.id}/participants", headers=hdr(new_pid()))
    assert await redis_client.zcard(keys.room_presence(room.id)) == 1


async def test_a_slow_reader_cannot_put_back_a_room_older_than_the_last_change(api, room):
    """A reader that loaded the room before a join must not cache its stale count after it."""
    service = api._transport.app.state.ctx.service
    stale_view = await service.get(room.id)  # count 1
    _, generation = await service.cache.cached_view(room.id)
    await room.join("Bob")  # commits, then invalidates
    await service.cache.cache_view(stale_view, generation)  # the slow reader's late write
    assert (await api.get(f"/api/v1/rooms/{room.id}")).json()["participant_count"] == 2


async def test_a_kick_that_cannot_reach_redis_changes_nothing_and_its_retry_works(
    api, room, redis_client, monkeypatch
):
    """Ending a membership fails closed: the hash is updated before the commit, so a Redis
    failure leaves the kicked member neither kicked in PostgreSQL nor chatting on a stale hash
    with nobody able to kick it again."""
    import redis.exceptions

    cache = api._transport.app.state.ctx.service.cache
    bob, bob_self = await room.join("Bob")
    real_drop = cache.drop_members

    async def redis_down(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")

    monkeypatch.setattr(cache, "drop_members", redis_down)
    kick_url = f"/api/v1/rooms/{room.id}/participants/{bob_self['id']}/kick"
    failed = await api.post(kick_url, headers=hdr(room.host))
    assert failed.status_code == 503
    assert failed.json()["code"] == "unavailable"
    listed = (await api.get(f"/api/v1/rooms/{room.id}/participants")).json()["participants"]
    assert bob_self["id"] in [p["id"] for p in listed]  # nothing was committed

    monkeypatch.setattr(cache, "drop_members", real_drop)
    assert (await api.post(kick_url, headers=hdr(room.host))).status_code == 204
    assert await redis_client.hget(keys.room_participants(room.id), bob) is None
    rejoin = await api.post(f"/api/v1/rooms/{room.id}/join", json={"display_name": "B"}, headers=hdr(bob))
    assert rejoin.status_code == 403 and rejoin.json()["code"] == "banned"
