"""Vanished members: no chat socket, no LiveKit connection and no request for
PRESENCE_TIMEOUT_SECONDS means the janitor has rooms mark them left with reason `timeout`."""

import asyncio
import json
from uuid import UUID

from tests.janitor.support import (
    PRESENCE_TIMEOUT_SECONDS,
    create_room,
    join,
    keep_alive,
    livekit_joined_webhook,
    member_row,
    room_row,
)
from tests.support import EventReader, eventually, hdr


def _timed_out(jdb, public_id):
    async def check():
        row = await member_row(jdb, public_id)
        return row if row["leave_reason"] == "timeout" else None

    return check


async def test_a_silent_member_is_marked_left_with_reason_timeout_while_present_ones_stay(rooms_api, jdb):
    room_id, host, host_public = await create_room(rooms_api, "Who is still here")
    stop = asyncio.Event()
    alive = asyncio.create_task(keep_alive(rooms_api, room_id, host, stop))
    try:
        _, bob_public = await join(rooms_api, room_id, "Bob")
        _, dave_public = await join(rooms_api, room_id, "Dave")
        body, headers = livekit_joined_webhook(room_id, dave_public, "PA_dave")
        hook = await rooms_api.post("/api/v1/livekit/webhook", content=body, headers=headers)
        assert hook.status_code in (200, 204), hook.text

        bob = await eventually(_timed_out(jdb, bob_public), timeout=20)
        joined = await jdb.fetchval("SELECT joined_at FROM room_participants WHERE id = $1", UUID(bob_public))
        assert (bob["left_at"] - joined).total_seconds() >= PRESENCE_TIMEOUT_SECONDS
        # One more sweep window for anyone wrongly taken along.
        await asyncio.sleep(1.0)
        assert (await member_row(jdb, host_public))["left_at"] is None  # it makes requests
        assert (await member_row(jdb, dave_public))["left_at"] is None  # it is in LiveKit

        listed = (await rooms_api.get(f"/api/v1/rooms/{room_id}/participants")).json()
        assert {p["display_name"] for p in listed["participants"]} == {"Host", "Dave"}
        async with EventReader() as reader:
            events = await reader.read_room(room_id, expected=5)
        left = [b for _, _, b in events if b["type"] == "participant.left"]
        assert [(b["participant"]["id"], b["reason"]) for b in left] == [(bob_public, "timeout")]
        assert "participant_id" not in json.dumps(left)
    finally:
        stop.set()
        await alive
    await rooms_api.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(host))


async def test_when_the_last_member_times_out_the_room_starts_expiring_and_ends(rooms_api, jdb):
    room_id, _, host_public = await create_room(rooms_api, "Everyone vanished")
    await eventually(_timed_out(jdb, host_public), timeout=20)

    async def ended():
        row = await room_row(jdb, room_id)
        return row if row["status"] == "ended" else None

    await eventually(ended, timeout=15)
    async with EventReader() as reader:
        events = await reader.read_room(room_id, expected=4)
    assert [(b["type"], b.get("reason")) for _, _, b in events] == [
        ("room.created", None),
        ("participant.joined", None),
        ("participant.left", "timeout"),
        ("room.ended", None),
    ]


async def test_a_member_holding_a_chat_socket_stays_while_a_silent_one_times_out(jstack, rooms_api, jdb):
    from websockets.asyncio.client import connect

    room_id, host, _ = await create_room(rooms_api, "Chatting")
    stop = asyncio.Event()
    alive = asyncio.create_task(keep_alive(rooms_api, room_id, host, stop))
    carol, carol_public = await join(rooms_api, room_id, "Carol")
    _, bob_public = await join(rooms_api, room_id, "Bob")
    ws_url = jstack.chat_url.replace("http://", "ws://") + f"/ws/chat/{room_id}"
    try:
        async with connect(ws_url, open_timeout=10) as socket:
            await socket.send(json.dumps({"type": "auth", "participant_id": carol, "after": None}))
            ready = json.loads(await asyncio.wait_for(socket.recv(), 10))
            assert ready["type"] == "ready", ready
            # Read whatever the room sends while the socket stays open and silent.
            reader = asyncio.create_task(_drain(socket))
            await eventually(_timed_out(jdb, bob_public), timeout=20)
            await asyncio.sleep(1.5)
            assert (await member_row(jdb, carol_public))["left_at"] is None
            reader.cancel()
    finally:
        stop.set()
        await alive
    await rooms_api.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(host))


async def _drain(socket) -> None:
    async for _ in socket:
        pass
