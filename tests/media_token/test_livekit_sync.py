"""LiveKit kept in step with the rooms by media-token's durable consumer of ROOMS events: what
the RecordingLiveKitDouble receives when rooms are created, ended (by the host or by expiry)
and when someone is kicked; and that a LiveKit outage delays the calls but fails nothing."""

import os

from prometheus_client import REGISTRY

from helpers import eventually
from tests.media_token.meetings import Meeting


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
    js = media.app.state.nats.client.jetstream()

    async def check() -> bool:
        info = await js.consumer_info(os.environ["NATS_STREAM"], media.settings.sync_durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(check, timeout=30, interval=0.1)


async def test_room_created_creates_the_livekit_room_with_its_limits(media, rooms, livekit):
    meeting = await Meeting(rooms).create(max_participants=7)
    [call] = await recorded(livekit, "CreateRoom", meeting.livekit_room)
    request = call.request
    assert request.name == meeting.livekit_room == f"veche-{meeting.id}"
    assert request.max_participants == 7
    assert request.empty_timeout == media.settings.livekit_empty_timeout_seconds > 0
    assert request.departure_timeout == media.settings.livekit_departure_timeout_seconds > 0
    assert call.grants.room_create


async def test_room_end_deletes_the_livekit_room_exactly_once(media, meeting, livekit):
    await recorded(livekit, "CreateRoom", meeting.livekit_room)
    assert (await meeting.end()).status_code == 200
    [call] = await recorded(livekit, "DeleteRoom", meeting.livekit_room)
    assert call.request.room == meeting.livekit_room and call.grants.room_create
    await settled(media)
    assert len(livekit.recorded("DeleteRoom", meeting.livekit_room, ok=None)) == 1
    assert meeting.livekit_room not in livekit.rooms


async def test_expiry_of_an_empty_room_deletes_the_livekit_room(media, meeting, rooms, livekit):
    # The janitor ends a room through rooms' expire endpoint once it is empty and due (this
    # rooms process makes an empty room due at once).
    await recorded(livekit, "CreateRoom", meeting.livekit_room)
    assert (await meeting.leave(meeting.host)).status_code == 204
    expired = await rooms.post(f"/internal/v1/rooms/{meeting.id}/expire")
    assert expired.status_code == 200, expired.text
    assert (await rooms.get(f"/api/v1/rooms/{meeting.id}")).json()["status"] == "ended"
    await recorded(livekit, "DeleteRoom", meeting.livekit_room)
    await settled(media)
    assert len(livekit.recorded("DeleteRoom", meeting.livekit_room, ok=None)) == 1


async def test_kick_removes_the_participant_from_livekit_once(media, meeting, livekit):
    pid, public_id = await meeting.join("Dmitri")
    livekit.connect(meeting.livekit_room, public_id)
    assert (await meeting.kick(public_id)).status_code == 204
    [call] = await recorded(livekit, "RemoveParticipant", meeting.livekit_room)
    assert (call.request.room, call.request.identity) == (meeting.livekit_room, public_id)
    assert call.grants.room_admin and call.grants.room == meeting.livekit_room
    assert pid not in call.request.SerializeToString().decode("utf-8", "replace")
    await settled(media)
    assert len(livekit.recorded("RemoveParticipant", meeting.livekit_room, ok=None)) == 1
    assert public_id not in livekit.rooms[meeting.livekit_room].participants


async def test_kick_of_someone_never_in_livekit_is_done_after_one_not_found(media, meeting, livekit):
    _, public_id = await meeting.join("Eva")
    await recorded(livekit, "CreateRoom", meeting.livekit_room)
    assert (await meeting.kick(public_id)).status_code == 204
    [call] = await recorded(livekit, "RemoveParticipant", meeting.livekit_room, ok=False)
    assert call.status == 404
    await settled(media)
    assert len(livekit.recorded("RemoveParticipant", meeting.livekit_room, ok=None)) == 1


async def test_leaving_by_choice_does_not_touch_livekit(media, meeting, livekit):
    pid, public_id = await meeting.join("Fedor")
    livekit.connect(meeting.livekit_room, public_id)
    assert (await meeting.leave(pid)).status_code == 204
    await settled(media)
    assert livekit.recorded("RemoveParticipant", meeting.livekit_room, ok=None) == []


async def test_livekit_outage_fails_nothing_and_delete_room_arrives_once_after_recovery(
    media, meeting, rooms, livekit
):
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
