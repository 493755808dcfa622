"""A room.ended event that rooms never published (forged by anyone who can publish to NATS,
or replayed out of order) closes no socket and deletes nothing: chat and the janitor act on
room.ended only when rooms says the room ended."""

import asyncio
import os
import uuid

import nats
import pytest

from tests.chat.support import Room, chat_socket
from tests.support import hdr
from veche.common import keys
from veche.common.events import RoomEvent, event_subject

pytestmark = pytest.mark.e2e


async def test_a_forged_room_ended_closes_no_socket_and_wipes_no_history(stack, gw, redis_client):
    room = await Room.create(gw)
    await room.wait_for_system("Host joined")
    anna = await room.join("Anna")
    await room.post(anna, "keep me")
    async with chat_socket(stack.url, room.id, anna) as socket:
        forged = RoomEvent(type="room.ended", room_id=uuid.UUID(room.id))
        client = await nats.connect(os.environ["NATS_URL"])
        try:
            await client.jetstream().publish(
                event_subject(os.environ["NATS_SUBJECT_PREFIX"], room.id, "room.ended"),
                forged.to_json(),
                headers={"Nats-Msg-Id": str(forged.event_id)},
            )
        finally:
            await client.close()
        # Longer than the janitor's grace period and chat's event delivery.
        await asyncio.sleep(7)
        await socket.send({"type": "message.send", "content": "still here", "client_msg_id": "a"})
        assert (await socket.next("ack"))["message"]["content"] == "still here"
        assert not [t for t in socket.texts if '"room.ended"' in t]
    contents = [m["content"] for m in await room.history(anna) if m["message_type"] == "user"]
    assert contents == ["keep me", "still here"]
    assert await redis_client.exists(keys.room_participants(room.id))
    # The real end still works as before.
    async with chat_socket(stack.url, room.id, anna) as socket:
        assert (await gw.post(f"/api/v1/rooms/{room.id}/end", headers=hdr(room.host.pid))).status_code == 200
        assert (await socket.next("room.ended"))["type"] == "room.ended"
        assert await socket.closed() == 4410
