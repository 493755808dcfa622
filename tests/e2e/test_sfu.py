"""Video through the real LiveKit server: members join through the platform's API, get their
tokens from it and meet on the SFU. Host powers, webhooks and a LiveKit restart are checked
on the SFU itself, not on a double."""

import asyncio
import time

import httpx
import pytest
from livekit import api as lk
from livekit import rtc

from tests.e2e.support.sfu import Member, within
from tests.support import eventually, hdr
from veche.common import keys

pytestmark = pytest.mark.e2e


@pytest.fixture
async def call(gw):  # type: ignore[no-untyped-def]
    """A room with its host; every Member made through it is closed after the test."""
    made: list[Member] = []
    host = await Member.create_room(gw, "Anna")
    made.append(host)
    original = host.invite

    async def invite(name: str) -> Member:
        member = await original(name)
        made.append(member)
        return member

    host.invite = invite  # type: ignore[method-assign]
    yield host
    for member in made:
        await member.close()


async def livekit_participants(livekit_server, room: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with livekit_server.api() as api:
        try:
            listed = await api.room.list_participants(lk.ListParticipantsRequest(room=room))
        except lk.TwirpError:
            return []
    return [p.identity for p in listed.participants]


async def removed_intruders(stack) -> float:  # type: ignore[no-untyped-def]
    """The intruders every rooms replica removed (whichever got LiveKit's webhook)."""
    total = 0.0
    async with httpx.AsyncClient(timeout=5) as client:
        for url in stack.service_urls("rooms"):
            text = (await client.get(f"{url}/metrics")).text
            name = "veche_livekit_intruders_removed_total "
            line = next(x for x in text.splitlines() if x.startswith(name))
            total += float(line.split()[1])
    return total


async def livekit_rooms(livekit_server) -> list[str]:  # type: ignore[no-untyped-def]
    async with livekit_server.api() as api:
        listed = await api.room.list_rooms(lk.ListRoomsRequest())
    return [r.name for r in listed.rooms]


async def test_two_members_see_each_other_through_the_sfu(call, capsys):
    host = call
    guest = await host.invite("Boris")
    started = time.monotonic()
    await host.connect()
    await guest.connect()
    await host.publish_camera()
    await guest.publish_camera()
    assert await guest.frames_from(host) >= 20
    assert await host.frames_from(guest) >= 20
    first = guest.first_frame_at[host.public_id] - started
    with capsys.disabled():
        print(f"\n[sfu] connect to first decoded frame: {first * 1000:.0f} ms")
    # What LiveKit knows of them is the public id and the display name, never the secret.
    remote = host.remote(guest)
    assert remote is not None and remote.identity == guest.public_id and remote.name == "Boris"
    assert guest.pid not in (remote.identity, remote.name, remote.metadata)


async def test_host_mute_shows_as_muted_to_the_other_member_within_2s(call, gw):
    host = call
    guest = await host.invite("Vera")
    await host.connect()
    await guest.connect()
    audio_sid = await guest.publish_microphone()
    await guest.publish_camera()
    await host.frames_from(guest, count=5)

    def remote_audio_muted() -> bool:
        remote = host.remote(guest)
        publication = remote.track_publications.get(audio_sid) if remote else None
        return publication is not None and publication.muted

    def remote_audio_present() -> bool:
        remote = host.remote(guest)
        return remote is not None and audio_sid in remote.track_publications

    await within(10, remote_audio_present, "the guest's microphone reaches the host")
    assert not remote_audio_muted()
    response = await gw.post(
        f"/api/v1/rooms/{host.room_id}/media/participants/{guest.public_id}/mute",
        json={"kind": "audio"},
        headers=hdr(host.pid),
    )
    assert response.status_code == 204, response.text
    took = await within(2, remote_audio_muted, "the host sees the guest's microphone muted")
    assert took < 2
    # The guest's own client knows it was muted; the camera still runs.
    local = guest.room.local_participant if guest.room else None
    assert local is not None
    await within(2, lambda: local.track_publications[audio_sid].muted, "the guest's client knows")
    before = host.frames.get(guest.public_id, 0)
    await host.frames_from(guest, count=before + 5)


async def test_kick_disconnects_from_the_sfu_within_2s_and_the_old_token_cannot_get_back_in(
    call, gw, livekit_server, stack
):
    host = call
    guest = await host.invite("Gleb")
    await host.connect()
    old_token = await guest.token()
    await guest.connect(old_token)
    await guest.publish_camera()
    await host.frames_from(guest, count=5)

    response = await gw.post(
        f"/api/v1/rooms/{host.room_id}/participants/{guest.public_id}/kick", headers=hdr(host.pid)
    )
    assert response.status_code == 204
    await within(2, guest.disconnected.is_set, "the kicked member is disconnected from the SFU")
    await within(2, lambda: host.remote(guest) is None, "the host no longer sees the kicked member")
    await guest.close()

    # The old token is still within its lifetime: LiveKit may let it connect, and the
    # platform removes it again at once (participant_joined webhook).
    intruder = Member(gw, host.room_id, guest.pid, guest.public_id, "Gleb again")
    removed_before = await removed_intruders(stack)
    try:
        try:
            await intruder.connect(old_token)
        except rtc.ConnectError:
            pass  # refused outright: fine too
        else:
            await within(2, intruder.disconnected.is_set, "the old token's connection is removed")
            assert await removed_intruders(stack) == removed_before + 1
        room = f"veche-{host.room_id}"

        async def gone() -> bool:
            return guest.public_id not in await livekit_participants(livekit_server, room)

        assert await eventually(gone, timeout=2)
        assert host.remote(guest) is None
    finally:
        await intruder.close()


async def test_ending_the_room_disconnects_everyone_and_removes_the_livekit_room(call, gw, livekit_server):
    host = call
    guest = await host.invite("Daria")
    await host.connect()
    guest_token = await guest.token()
    await guest.connect(guest_token)
    room = f"veche-{host.room_id}"
    assert room in await livekit_rooms(livekit_server)

    response = await gw.post(f"/api/v1/rooms/{host.room_id}/end", headers=hdr(host.pid))
    assert response.status_code == 200
    await within(
        5,
        lambda: host.disconnected.is_set() and guest.disconnected.is_set(),
        "everyone is disconnected when the room ends",
    )

    async def room_gone() -> bool:
        return room not in await livekit_rooms(livekit_server)

    assert await eventually(room_gone, timeout=5)
    # A token from before the end cannot bring the room back (auto_create is off).
    late = Member(gw, host.room_id, guest.pid, guest.public_id, "late")
    with pytest.raises(rtc.ConnectError):
        await late.connect(guest_token)
    await late.close()
    assert room not in await livekit_rooms(livekit_server)
    # And the platform gives no new one.
    refused = await gw.post(f"/api/v1/rooms/{host.room_id}/media/token", headers=hdr(guest.pid))
    assert refused.status_code == 409 and refused.json()["code"] == "room_ended"


async def test_a_token_for_a_room_the_platform_never_created_is_refused(gw, livekit_server):
    import uuid

    name = f"veche-{uuid.uuid4()}"
    token = {"url": livekit_server.url, "token": livekit_server.token(str(uuid.uuid4()), name)}
    stranger = Member(gw, "", "", "", "stranger")
    with pytest.raises(rtc.ConnectError):
        await stranger.connect(token)
    await stranger.close()
    assert name not in await livekit_rooms(livekit_server)


async def test_a_member_of_another_room_is_removed_from_a_livekit_room(call, gw, livekit_server, stack):
    """A token for this room's LiveKit room with the identity of another room's member (only
    someone holding the platform's keys could make one): removed as soon as LiveKit reports it."""
    host = call
    await host.connect()
    other = await Member.create_room(gw, "Other host")
    room = f"veche-{host.room_id}"
    token = {"url": livekit_server.url, "token": livekit_server.token(other.public_id, room)}
    removed_before = await removed_intruders(stack)
    try:
        await other.connect(token)
        await within(2, other.disconnected.is_set, "the stranger is removed")
        assert await removed_intruders(stack) == removed_before + 1

        async def gone() -> bool:
            return other.public_id not in await livekit_participants(livekit_server, room)

        assert await eventually(gone, timeout=2)
    finally:
        await other.close()


async def test_webhooks_from_the_real_server_record_livekit_sid_and_presence(call, gw, redis_client):
    host = call
    guest = await host.invite("Ilya")
    token = await guest.token()
    room = await guest.connect(token)
    sid = room.local_participant.sid

    async def recorded() -> bool:
        listed = (await gw.get(f"/api/v1/rooms/{host.room_id}/participants")).json()["participants"]
        return any(p["id"] == guest.public_id and p["livekit_sid"] == sid for p in listed)

    assert await eventually(recorded, timeout=5)
    # A connection counts as a sign of life. The same token once more (no token request,
    # which would count too): LiveKit replaces the first connection, whose participant_left
    # (duplicate identity) is no leave; the new one is recorded.
    await redis_client.zrem(keys.room_presence(host.room_id), guest.public_id)
    first = guest.room
    guest.room = None
    await guest.connect(token)
    sid = guest.room.local_participant.sid if guest.room else ""
    assert await eventually(recorded, timeout=5)

    async def seen() -> bool:
        return await redis_client.zscore(keys.room_presence(host.room_id), guest.public_id) is not None

    assert await eventually(seen, timeout=5)
    del first
    # Leaving the call (the client disconnects) is a participant_left with that sid: the
    # membership ends.
    await guest.close()

    async def left() -> bool:
        listed = (await gw.get(f"/api/v1/rooms/{host.room_id}/participants")).json()["participants"]
        return guest.public_id not in [p["id"] for p in listed]

    assert await eventually(left, timeout=5)


async def test_livekit_restarted_mid_call_members_get_back_in_and_chat_is_undisturbed(
    call, gw, livekit_server, stack
):
    import json

    import websockets

    host = call
    guest = await host.invite("Kira")
    await host.connect()
    await guest.connect()
    await host.publish_camera()
    await guest.frames_from(host, count=10)

    ws_url = stack.url.replace("http://", "ws://") + f"/ws/chat/{host.room_id}"
    async with websockets.connect(ws_url) as socket:
        await socket.send(json.dumps({"type": "auth", "participant_id": guest.pid, "after": None}))
        assert json.loads(await socket.recv())["type"] == "ready"

        livekit_server.kill()
        # Chat carries on while LiveKit is away.
        posted = await gw.post(
            f"/api/v1/rooms/{host.room_id}/chat/messages",
            json={"content": "still here?"},
            headers=hdr(host.pid),
        )
        assert posted.status_code == 201, posted.text
        livekit_server.start()

        async def frame_of(message_id: str) -> bool:
            while True:
                frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
                if frame["type"] == "message.created" and frame["message"]["id"] == message_id:
                    return True

        assert await frame_of(posted.json()["id"])

        # The SDK notices the lost server; the clients ask the platform for a new token and
        # connect again, as the web client does.
        await host.close()
        await guest.close()
        started = time.monotonic()
        await host.connect()
        await guest.connect()
        await host.publish_camera()
        assert await guest.frames_from(host, count=20) >= 20
        assert time.monotonic() - started < 20

        # Nobody left the room on the platform's side.
        listed = (await gw.get(f"/api/v1/rooms/{host.room_id}/participants")).json()["participants"]
        assert {host.public_id, guest.public_id} <= {p["id"] for p in listed}
        again = await gw.post(
            f"/api/v1/rooms/{host.room_id}/chat/messages", json={"content": "back"}, headers=hdr(guest.pid)
        )
        assert again.status_code == 201
        assert await frame_of(again.json()["id"])
