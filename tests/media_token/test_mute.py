"""POST /api/v1/rooms/{id}/media/participants/{public_id}/mute: the host mutes a published
track through LiveKit's MutePublishedTrack, seen on the real LiveKit server (the double only
records which calls are made, and plays an outage)."""

import uuid

from livekit import api as lk

from tests.e2e.support.sfu import Member
from tests.media_token.support import assert_problem
from tests.support import eventually, hdr, new_pid


def mute_path(room_id: str, public_id: str) -> str:
    return f"/api/v1/rooms/{room_id}/media/participants/{public_id}/mute"


async def connected(media, meeting, name: str = "Boris") -> Member:  # type: ignore[no-untyped-def]
    """A member connected to the real LiveKit server, publishing microphone and camera."""
    pid, public_id = await meeting.join(name)
    member = Member(media, meeting.id, pid, public_id, name)
    await member.connect()
    member.audio_sid = await member.publish_microphone()  # type: ignore[attr-defined]
    member.video_sid = await member.publish_camera()  # type: ignore[attr-defined]
    return member


async def published(livekit_server, meeting, public_id: str) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    """Track sid → muted, as LiveKit itself has it."""
    async with livekit_server.api() as api:
        info = await api.room.get_participant(
            lk.RoomParticipantIdentity(room=meeting.livekit_room, identity=public_id)
        )
    return {track.sid: track.muted for track in info.tracks}


async def test_host_mutes_a_participants_audio_in_livekit(media, meeting, livekit_server):
    member = await connected(media, meeting)
    try:

        async def both_published() -> bool:
            return len(await published(livekit_server, meeting, member.public_id)) == 2

        await eventually(both_published, timeout=10)
        response = await media.post(
            mute_path(meeting.id, member.public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
        )
        assert response.status_code == 204, response.text
        assert response.content == b""
        tracks = await published(livekit_server, meeting, member.public_id)
        assert tracks == {member.audio_sid: True, member.video_sid: False}  # type: ignore[attr-defined]
    finally:
        await member.close()


async def test_host_mutes_video_and_muting_again_is_still_204(media, meeting, livekit_server):
    member = await connected(media, meeting, "Vera")
    try:

        async def video_published() -> bool:
            return member.video_sid in await published(livekit_server, meeting, member.public_id)  # type: ignore[attr-defined]

        await eventually(video_published, timeout=10)
        for _ in range(2):
            response = await media.post(
                mute_path(meeting.id, member.public_id), json={"kind": "video"}, headers=hdr(meeting.host)
            )
            assert response.status_code == 204, response.text
        tracks = await published(livekit_server, meeting, member.public_id)
        assert tracks[member.video_sid] is True and tracks[member.audio_sid] is False  # type: ignore[attr-defined]
    finally:
        await member.close()


async def test_mute_of_a_member_not_connected_to_livekit_is_204_and_mutes_nothing(media, meeting):
    _, public_id = await meeting.join()
    response = await media.post(
        mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
    )
    assert response.status_code == 204, response.text


async def test_the_double_records_exactly_the_mute_calls_livekit_gets(
    media_on_double, meeting, livekit_double
):
    """Which RoomService calls a mute makes, and that an already muted track is left alone."""
    _, public_id = await meeting.join()
    sids = livekit_double.connect(meeting.livekit_room, public_id)
    for _ in range(2):
        response = await media_on_double.post(
            mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
        )
        assert response.status_code == 204, response.text
    mutes = livekit_double.recorded("MutePublishedTrack", meeting.livekit_room)
    assert [(m.request.identity, m.request.track_sid, m.request.muted) for m in mutes] == [
        (public_id, sids["audio"], True)
    ]
    assert mutes[0].grants.room_admin and mutes[0].grants.room == meeting.livekit_room


async def test_mute_by_a_participant_is_403_not_host(media, meeting):
    pid, _ = await meeting.join()
    response = await media.post(
        mute_path(meeting.id, meeting.host_public_id), json={"kind": "audio"}, headers=hdr(pid)
    )
    assert_problem(response, 403, "not_host")


async def test_mute_by_a_stranger_is_403_not_a_participant(media, meeting):
    response = await media.post(
        mute_path(meeting.id, meeting.host_public_id), json={"kind": "audio"}, headers=hdr(new_pid())
    )
    assert_problem(response, 403, "not_a_participant")


async def test_mute_of_an_unknown_participant_is_404_participant_not_found(media, meeting):
    for target in (str(uuid.uuid4()), "not-a-uuid"):
        response = await media.post(
            mute_path(meeting.id, target), json={"kind": "audio"}, headers=hdr(meeting.host)
        )
        assert_problem(response, 404, "participant_not_found")


async def test_mute_of_someone_who_left_is_404_participant_not_found(media, meeting):
    pid, public_id = await meeting.join()
    assert (await meeting.leave(pid)).status_code == 204
    response = await media.post(
        mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
    )
    assert_problem(response, 404, "participant_not_found")


async def test_mute_with_an_unknown_kind_is_422_validation_error(media, meeting):
    for body in ({"kind": "screen"}, {"kind": 1}, {}):
        response = await media.post(
            mute_path(meeting.id, meeting.host_public_id), json=body, headers=hdr(meeting.host)
        )
        assert_problem(response, 422, "validation_error")
        assert [e["field"] for e in response.json()["errors"]] == ["kind"]


async def test_mute_with_a_body_that_is_not_json_is_400_invalid_json(media, meeting):
    response = await media.post(
        mute_path(meeting.id, meeting.host_public_id),
        content=b"{kind",
        headers={**hdr(meeting.host), "content-type": "application/json"},
    )
    assert_problem(response, 400, "invalid_json")


async def test_mute_in_an_ended_room_is_409_room_ended(media, meeting):
    assert (await meeting.end()).status_code == 200
    response = await media.post(
        mute_path(meeting.id, meeting.host_public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
    )
    assert_problem(response, 409, "room_ended")


async def test_mute_in_a_malformed_room_is_404_room_not_found(media):
    response = await media.post(
        mute_path("nope", str(uuid.uuid4())), json={"kind": "audio"}, headers=hdr(new_pid())
    )
    assert_problem(response, 404, "room_not_found")


async def test_mute_while_livekit_is_unreachable_is_503_unavailable(media_on_double, meeting, livekit_double):
    _, public_id = await meeting.join()
    livekit_double.connect(meeting.livekit_room, public_id)
    await livekit_double.stop()
    try:
        response = await media_on_double.post(
            mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
        )
    finally:
        await livekit_double.start()
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"]
