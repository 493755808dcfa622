"""POST /api/v1/rooms/{id}/media/token: the LiveKit access token, checked with LiveKit's own
TokenVerifier, and every refusal of docs/api.md."""

import json
import logging
import uuid
from datetime import UTC, datetime

import jwt
import pytest
from livekit import api as lk

from tests.media_token.support import assert_problem, verified
from tests.support import eventually, hdr, new_pid
from veche.common import keys
from veche.common.events import PublicParticipant
from veche.common.roomstate import RoomState
from veche.common.timefmt import utcnow
from veche.media_token.service import mint_token
from veche.media_token.settings import MediaSettings

TOKEN_FIELDS = {"token", "url", "room", "identity", "expires_at"}


def token_path(room_id: str) -> str:
    return f"/api/v1/rooms/{room_id}/media/token"


async def test_host_token_grants_join_publish_subscribe_data_and_room_admin(media, meeting, livekit_server):
    response = await media.post(token_path(meeting.id), headers=hdr(meeting.host))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == TOKEN_FIELDS
    assert body["url"] == livekit_server.url  # LIVEKIT_URL, for the browser
    assert body["room"] == meeting.livekit_room == f"veche-{meeting.id}"
    assert body["identity"] == meeting.host_public_id
    claims = verified(body["token"])
    assert claims.identity == meeting.host_public_id
    assert claims.name == "Anna"
    assert json.loads(claims.metadata) == {"role": "host"}
    video = claims.video
    assert video.room_join is True and video.room == meeting.livekit_room
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    assert video.room_admin is True
    assert not video.room_create and not video.room_list


async def test_participant_token_has_no_room_admin(media, meeting):
    pid, public_id = await meeting.join("Борис 🎥")
    response = await media.post(token_path(meeting.id), headers=hdr(pid))
    assert response.status_code == 200, response.text
    claims = verified(response.json()["token"])
    assert claims.identity == public_id == response.json()["identity"]
    assert claims.name == "Борис 🎥"
    assert json.loads(claims.metadata) == {"role": "participant"}
    assert claims.video.room_join is True and claims.video.room == meeting.livekit_room
    assert claims.video.can_publish and claims.video.can_subscribe and claims.video.can_publish_data
    assert not claims.video.room_admin


async def test_token_is_signed_with_the_api_secret(media, meeting):
    token = (await media.post(token_path(meeting.id), headers=hdr(meeting.host))).json()["token"]
    settings = media.settings
    with pytest.raises(jwt.InvalidSignatureError):
        lk.TokenVerifier(settings.livekit_api_key, "another-secret-of-at-least-32-chars").verify(token)
    with pytest.raises(jwt.InvalidIssuerError):
        lk.TokenVerifier("another-key", settings.livekit_api_secret).verify(token)


async def test_token_lives_ten_minutes_by_default_and_expires_at_says_when(media, meeting):
    before = int(utcnow().timestamp())
    body = (await media.post(token_path(meeting.id), headers=hdr(meeting.host))).json()
    raw = jwt.decode(body["token"], options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 600 == MediaSettings().livekit_token_ttl_seconds
    assert before <= raw["nbf"] <= before + 5
    assert body["expires_at"].endswith("Z")
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires_at == datetime.fromtimestamp(raw["exp"], UTC)


def test_token_lifetime_follows_livekit_token_ttl_seconds():
    member = PublicParticipant(id=uuid.uuid4(), display_name="Vera", role="participant", joined_at=utcnow())
    issued = mint_token(MediaSettings(livekit_token_ttl_seconds=90), member, "veche-x")
    raw = jwt.decode(issued.token, options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 90
    assert issued.expires_at == datetime.fromtimestamp(raw["exp"], UTC)
    assert verified(issued.token).identity == str(member.id)


async def test_token_never_carries_the_secret_participant_id(media, meeting, caplog):
    caplog.set_level(logging.INFO)
    pid, _ = await meeting.join("Gleb")
    for secret in (meeting.host, pid):
        response = await media.post(token_path(meeting.id), headers=hdr(secret))
        assert response.status_code == 200
        token = response.json()["token"]
        claims = jwt.decode(token, options={"verify_signature": False})
        assert secret not in json.dumps(claims)
        assert secret not in token
        assert secret not in response.text
    assert meeting.host not in caplog.text and pid not in caplog.text


async def test_token_request_records_a_sign_of_life(media, meeting, redis_client):
    await redis_client.zrem(keys.room_presence(meeting.id), meeting.host_public_id)
    assert (await media.post(token_path(meeting.id), headers=hdr(meeting.host))).status_code == 200
    assert await RoomState(redis_client).last_seen(meeting.id, meeting.host_public_id) is not None


async def test_token_works_when_the_membership_hash_is_gone(media, meeting, redis_client):
    # Redis lost the hash: media-token asks rooms, which rebuilds it from PostgreSQL.
    await redis_client.delete(keys.room_participants(meeting.id))
    response = await media.post(token_path(meeting.id), headers=hdr(meeting.host))
    assert response.status_code == 200, response.text
    assert response.json()["identity"] == meeting.host_public_id


# --- refusals ----------------------------------------------------------------------------


async def test_token_for_a_stranger_is_403_not_a_participant(media, meeting):
    assert_problem(await media.post(token_path(meeting.id), headers=hdr(new_pid())), 403, "not_a_participant")


async def test_token_without_identity_is_403_not_a_participant(media, meeting):
    assert_problem(await media.post(token_path(meeting.id)), 403, "not_a_participant")


async def test_token_after_leaving_is_403_not_a_participant(media, meeting):
    pid, _ = await meeting.join()
    assert (await meeting.leave(pid)).status_code == 204
    assert_problem(await media.post(token_path(meeting.id), headers=hdr(pid)), 403, "not_a_participant")


async def test_token_after_a_kick_is_403_not_a_participant(media, meeting):
    pid, public_id = await meeting.join()
    assert (await meeting.kick(public_id)).status_code == 204
    assert_problem(await media.post(token_path(meeting.id), headers=hdr(pid)), 403, "not_a_participant")


async def test_token_in_an_ended_room_is_409_room_ended(media, meeting):
    assert (await meeting.end()).status_code == 200
    assert_problem(await media.post(token_path(meeting.id), headers=hdr(meeting.host)), 409, "room_ended")


async def test_token_for_an_unknown_room_is_404_room_not_found(media):
    assert_problem(
        await media.post(token_path(str(uuid.uuid4())), headers=hdr(new_pid())), 404, "room_not_found"
    )


async def test_token_for_a_malformed_room_id_is_404_room_not_found(media):
    assert_problem(await media.post(token_path("not-a-room"), headers=hdr(new_pid())), 404, "room_not_found")


async def test_token_with_a_malformed_participant_id_is_400(media, meeting):
    assert_problem(
        await media.post(token_path(meeting.id), headers=hdr("not-a-uuid")), 400, "invalid_participant_id"
    )


async def test_token_when_video_is_not_configured_is_503_unavailable(meeting, rooms_url):
    from tests.support import app_client
    from veche.media_token.main import create_app

    app = create_app(MediaSettings(livekit_url="", rooms_internal_url=rooms_url))
    async with app_client(app) as client:
        response = await client.post(token_path(meeting.id), headers=hdr(meeting.host))
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"]


async def test_token_makes_the_livekit_room_again_when_livekit_has_closed_it(media, meeting, livekit_server):
    """auto_create is off: LiveKit closes an empty room after its timeout, and forgets every room
    when it restarts; a member who asks for a token finds the room there again."""
    assert (await media.post(token_path(meeting.id), headers=hdr(meeting.host))).status_code == 200
    async with livekit_server.api() as api:
        await api.room.delete_room(lk.DeleteRoomRequest(room=meeting.livekit_room))
        listed = await api.room.list_rooms(lk.ListRoomsRequest(names=[meeting.livekit_room]))
        assert list(listed.rooms) == []

        # LiveKit finishes closing a deleted room in the background: a CreateRoom that races
        # it can be lost, and the client's next token request (its reconnect) makes it.
        async def made_again():  # type: ignore[no-untyped-def]
            response = await media.post(token_path(meeting.id), headers=hdr(meeting.host))
            assert response.status_code == 200, response.text
            listed = await api.room.list_rooms(lk.ListRoomsRequest(names=[meeting.livekit_room]))
            return listed.rooms[0] if listed.rooms else None

        room = await eventually(made_again, timeout=10, interval=0.5)
    assert room.max_participants == 5  # the platform room's limit
    assert room.empty_timeout == media.settings.livekit_empty_timeout_seconds


async def test_token_while_livekit_is_unreachable_is_503_unavailable(
    media_on_double, meeting, livekit_double
):
    await livekit_double.stop()
    try:
        response = await media_on_double.post(token_path(meeting.id), headers=hdr(meeting.host))
    finally:
        await livekit_double.start()
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"]
