"""POST /api/v1/rooms/{id}/media/participants/{public_id}/mute: the host mutes a published
track through LiveKit's MutePublishedTrack (seen by the RecordingLiveKitDouble)."""

import uuid

from helpers import hdr, new_pid
from tests.media_token.checks import assert_problem


def mute_path(room_id: str, public_id: str) -> str:
    return f"/api/v1/rooms/{room_id}/media/participants/{public_id}/mute"


async def test_host_mutes_a_participants_audio_with_mute_published_track(media, meeting, livekit):
    _, public_id = await meeting.join()
    sids = livekit.connect(meeting.livekit_room, public_id)
    response = await media.post(
        mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
    )
    assert response.status_code == 204, response.text
    assert response.content == b""
    mutes = livekit.recorded("MutePublishedTrack", meeting.livekit_room)
    assert len(mutes) == 1 and mutes[0].ok
    request = mutes[0].request
    assert (request.room, request.identity, request.track_sid, request.muted) == (
        meeting.livekit_room, public_id, sids["audio"], True
    )
    assert mutes[0].grants.room_admin and mutes[0].grants.room == meeting.livekit_room
    assert livekit.track(meeting.livekit_room, public_id, sids["audio"]).muted
    assert not livekit.track(meeting.livekit_room, public_id, sids["video"]).muted


async def test_host_mutes_video_and_an_already_muted_track_is_left_alone(media, meeting, livekit):
    _, public_id = await meeting.join()
    sids = livekit.connect(meeting.livekit_room, public_id)
    for _ in range(2):
        response = await media.post(
            mute_path(meeting.id, public_id), json={"kind": "video"}, headers=hdr(meeting.host)
        )
        assert response.status_code == 204, response.text
    mutes = livekit.recorded("MutePublishedTrack", meeting.livekit_room)
    assert [m.request.track_sid for m in mutes] == [sids["video"]]
    assert livekit.track(meeting.livekit_room, public_id, sids["video"]).muted


async def test_mute_of_a_member_not_connected_to_livekit_is_204_and_mutes_nothing(media, meeting, livekit):
    _, public_id = await meeting.join()
    response = await media.post(
        mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
    )
    assert response.status_code == 204, response.text
    assert livekit.recorded("MutePublishedTrack", meeting.livekit_room) == []


async def test_mute_by_a_participant_is_403_not_host(media, meeting, livekit):
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
        mute_path(meeting.id, meeting.host_public_id), content=b"{kind",
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


async def test_mute_while_livekit_is_unreachable_is_503_unavailable(media, meeting, livekit):
    _, public_id = await meeting.join()
    livekit.connect(meeting.livekit_room, public_id)
    await livekit.stop()
    try:
        response = await media.post(
            mute_path(meeting.id, public_id), json={"kind": "audio"}, headers=hdr(meeting.host)
        )
    finally:
        await livekit.start()
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"]
