"""LiveKit kept in step with the rooms by media-token's durable consumer of ROOMS events, seen on
the real LiveKit server: rooms created with their limits, closed when they end (by the host or
by expiry), members removed when kicked or gone; and, with the double switched off, that a
LiveKit outage delays the calls but fails nothing."""

import os

import pytest
from livekit import api as lk
from prometheus_client import REGISTRY

from tests.e2e.support.sfu import Member
from tests.media_token.support import Meeting
from tests.support import eventually


def failures(media) -> float:  # type: ignore[no-untyped-def]
    durable = media.settings.sync_durable
    return REGISTRY.get_sample_value("veche_consumer_failures_total", {"durable": durable}) or 0.0


async def recorded(livekit, method: str, room: str, *, ok: bool | None = True):  # type: ignore[no-untyped-def]
    """The calls of that method for that room, once there is at least one."""

    async def check():  # type: ignore[no-untyped-def]
        return livekit.recorded(method, room, ok=ok)

    return await eventually(check, timeout=30)


async def settled(media) -> None:  # type: ignore[no-untyped-def]
    """Waits until the consumer has every event of the stream delivered and acknowledged, so
    no redelivery (and no further LiveKit call) can still come."""
    js = media.app.state.ctx.nats.client.jetstream()

    async def check() -> bool:
        info = await js.consumer_info(os.environ["NATS_STREAM"], media.settings.sync_durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(check, timeout=30, interval=0.1)


async def livekit_room(livekit_server, name: str):  # type: ignore[no-untyped-def]
    """The LiveKit room of that name on the real server, or None."""
    async with livekit_server.api() as api:
        listed = await api.room.list_rooms(lk.ListRoomsRequest(names=[name]))
    return listed.rooms[0] if listed.rooms else None


async def in_livekit(livekit_server, room: str, identity: str) -> bool:  # type: ignore[no-untyped-def]
    async with livekit_server.api() as api:
        try:
            listed = await api.room.list_participants(lk.ListParticipantsRequest(room=room))
        except lk.TwirpError:
            return False
    return identity in [p.identity for p in listed.participants]


async def test_room_created_creates_the_livekit_room_with_its_limits(media, rooms, livekit_server):
    meeting = await Meeting(rooms).create(max_participants=7)

    async def created():  # type: ignore[no-untyped-def]
        return await livekit_room(livekit_server, meeting.livekit_room)

    room = await eventually(created, timeout=30)
    assert room.name == meeting.livekit_room == f"veche-{meeting.id}"
    assert room.max_participants == 7
    assert room.empty_timeout == media.settings.livekit_empty_timeout_seconds > 0
    assert room.departure_timeout == media.settings.livekit_departure_timeout_seconds > 0


async def test_room_end_deletes_the_livekit_room(media, meeting, livekit_server):
    async def created():  # type: ignore[no-untyped-def]
        return await livekit_room(livekit_server, meeting.livekit_room)

    await eventually(created, timeout=30)
    assert (await meeting.end()).status_code == 200

    async def gone() -> bool:
        return await livekit_room(livekit_server, meeting.livekit_room) is None

    await eventually(gone, timeout=30)
    await settled(media)


async def test_expiry_of_an_empty_room_deletes_the_livekit_room(media, meeting, rooms, livekit_server):
    # The janitor ends a room through rooms' expire endpoint once it is empty and due (this
    # rooms process makes an empty room due at once).
    async def created():  # type: ignore[no-untyped-def]
        return await livekit_room(livekit_server, meeting.livekit_room)

    await eventually(created, timeout=30)
    assert (await meeting.leave(meeting.host)).status_code == 204
    expired = await rooms.post(f"/internal/v1/rooms/{meeting.id}/expire")
    assert expired.status_code == 200, expired.text
    assert (await rooms.get(f"/api/v1/rooms/{meeting.id}")).json()["status"] == "ended"

    async def gone() -> bool:
        return await livekit_room(livekit_server, meeting.livekit_room) is None

    await eventually(gone, timeout=30)


@pytest.mark.parametrize("how", ["kick", "leave"])
async def test_a_member_who_is_kicked_or_leaves_is_removed_from_livekit(media, meeting, livekit_server, how):
    """Kicked, or left through the API while still connected (a client that does not hang up):
    the LiveKit connection closes too."""
    pid, public_id = await meeting.join("Dmitri")
    member = Member(media, meeting.id, pid, public_id, "Dmitri")
    await member.connect()
    try:
        assert await in_livekit(livekit_server, meeting.livekit_room, public_id)
        done = await (meeting.kick(public_id) if how == "kick" else meeting.leave(pid))
        assert done.status_code == 204

        async def removed() -> bool:
            return member.disconnected.is_set() and not await in_livekit(
                livekit_server, meeting.livekit_room, public_id
            )

        await eventually(removed, timeout=10)
        await settled(media)
    finally:
        await member.close()


async def test_kick_of_someone_never_in_livekit_is_done_at_once(media, meeting, livekit_server):
    _, public_id = await meeting.join("Eva")
    assert (await meeting.kick(public_id)).status_code == 204
    # Everything acknowledged: LiveKit's not_found counted as done (a failure would be
    # redelivered with backoff, and stay pending).
    await settled(media)


async def test_livekit_outage_fails_nothing_and_delete_room_arrives_once_after_recovery(
    media_on_double, meeting, rooms, livekit_double
):
    media, livekit = media_on_double, livekit_double
    _, public_id = await meeting.join("Galina")
    livekit.connect(meeting.livekit_room, public_id)
    await recorded(livekit, "CreateRoom", meeting.livekit_room)
    failed_before = failures(media)

    await livekit.stop()  # connection refused from now on
    try:
        await meeting.join("Late")  # 201, LiveKit or not
        assert (await meeting.kick(public_id)).status_code == 204
        ended = await meeting.end()
        assert ended.status_code == 200 and ended.json()["status"] == "ended"

        async def retried() -> bool:
            return failures(media) >= failed_before + 2  # the kick and the end, at least

        await eventually(retried, timeout=20)
        assert livekit.recorded("DeleteRoom", meeting.livekit_room, ok=None) == []
    finally:
        await livekit.start()

    [call] = await recorded(livekit, "DeleteRoom", meeting.livekit_room)
    assert call.request.room == meeting.livekit_room
    await settled(media)
    assert len(livekit.recorded("DeleteRoom", meeting.livekit_room, ok=None)) == 1
    assert len(livekit.recorded("RemoveParticipant", meeting.livekit_room, ok=None)) <= 1
    assert meeting.livekit_room not in livekit.rooms
