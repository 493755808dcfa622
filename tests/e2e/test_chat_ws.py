"""Every WebSocket step of docs/api.md, through the real Traefik to the real chat processes."""

import asyncio
import contextlib
import json
import uuid

import pytest
import websockets

from tests.chat.support import (
    MESSAGE_KEYS,
    Room,
    Socket,
    assert_message,
    assert_no_secret,
    chat_socket,
    raw_socket,
)
from tests.support import hdr, new_pid

pytestmark = pytest.mark.e2e

PARTICIPANT_KEYS = {"id", "display_name", "role", "joined_at", "livekit_sid", "hand_raised_at"}


@pytest.fixture
async def room(gw) -> Room:
    made = await Room.create(gw)
    await made.wait_for_system("Host joined")
    return made


def no_secrets(room: Room, *sockets: Socket) -> None:
    for socket in sockets:
        for text in socket.texts:
            assert_no_secret(text, room.secrets())


# --- 1-2: auth, ready, replay ----------------------------------------------------------------


async def test_auth_frame_is_answered_with_ready_and_the_public_participant(stack, room: Room):
    anna = await room.join("Anna")
    async with raw_socket(stack.url, room.id) as socket:
        await socket.send({"type": "auth", "participant_id": anna.pid, "after": None})
        ready = await socket.recv()
    assert ready["type"] == "ready" and set(ready) == {"type", "participant"}
    assert set(ready["participant"]) == PARTICIPANT_KEYS
    assert ready["participant"]["id"] == anna.public_id
    assert ready["participant"]["display_name"] == "Anna"
    assert ready["participant"]["role"] == "participant"
    no_secrets(room, socket)


async def test_a_non_browser_client_may_authenticate_with_the_header_on_the_upgrade(stack, room: Room):
    first = await room.post(room.host, "before")
    second = await room.post(room.host, "after it")
    async with raw_socket(stack.url, room.id, headers=hdr(room.host.pid)) as socket:
        assert (await socket.recv())["type"] == "ready"
        await room.post(room.host, "live")
        assert (await socket.next("message.created"))["message"]["content"] == "live"
    query = f"?after={first['id']}"
    async with raw_socket(stack.url, room.id, headers=hdr(room.host.pid), query=query) as socket:
        assert (await socket.recv())["type"] == "ready"
        replayed = await socket.next("message.created")
        assert replayed["message"]["id"] == second["id"]


async def test_a_reconnect_with_after_replays_exactly_the_missed_messages(stack, room: Room):
    anna = await room.join("Anna")
    async with chat_socket(stack.url, room.id, anna) as socket:
        await room.post(room.host, "seen")
        seen = await socket.created("seen")
    missed = [await room.post(room.host, f"missed {i}") for i in range(5)]
    async with chat_socket(stack.url, room.id, anna, after=seen["id"]) as socket:
        replayed = [await socket.next("message.created") for _ in missed]
        await room.post(room.host, "live again")
        live = await socket.next("message.created")
    assert [m["message"] for m in replayed] == missed
    assert live["message"]["content"] == "live again"
    assert [f["type"] for f in socket.frames].count("message.created") == 6


async def test_replay_and_live_meet_without_a_gap_or_a_duplicate(stack, room: Room):
    anna = await room.join("Anna")
    start = (await room.post(room.host, "start"))["id"]
    count = 60

    async def write() -> list[str]:
        ids = []
        for i in range(count):
            ids.append((await room.post(room.host, f"n{i}"))["id"])
        return ids

    writer = asyncio.create_task(write())
    await asyncio.sleep(0.2)  # connect while the writer is in full flow
    async with chat_socket(stack.url, room.id, anna, after=start) as socket:
        received: list[str] = []
        while len(received) < count:
            frame = await socket.next("message.created", timeout=10)
            if frame["message"]["message_type"] == "user":
                received.append(frame["message"]["id"])
    sent = await writer
    assert received == sent


# --- 3-4: frames -----------------------------------------------------------------------------


async def test_message_send_is_acked_and_broadcast_to_every_socket(stack, room: Room):
    anna = await room.join("Anna")
    async with (
        chat_socket(stack.url, room.id, anna) as sender,
        chat_socket(stack.url, room.id, room.host) as other,
    ):
        await sender.send({"type": "message.send", "content": " hey ", "client_msg_id": "c-1"})
        ack = await sender.next("ack")
        assert set(ack) == {"type", "client_msg_id", "message"}
        assert ack["client_msg_id"] == "c-1"
        assert_message(ack["message"])
        assert ack["message"]["content"] == "hey"
        assert ack["message"]["sender_id"] == anna.public_id
        for socket in (sender, other):
            created = await socket.first(
                lambda f: f["type"] == "message.created" and f["message"]["content"] == "hey"
            )
            assert set(created) == {"type", "message"} and created["message"] == ack["message"]
    assert ack["message"] in await room.history()
    no_secrets(room, sender, other)


@pytest.mark.parametrize("content", ["", "   ", "x" * 4001, 42, None])
async def test_message_send_with_a_bad_content_answers_an_error_frame(stack, room: Room, content):
    async with chat_socket(stack.url, room.id, room.host) as socket:
        await socket.send({"type": "message.send", "content": content, "client_msg_id": 7})
        error = await socket.next("error")
        assert set(error) == {"type", "client_msg_id", "code", "detail"}
        assert error["client_msg_id"] == 7 and error["code"] == "validation_error"
        await socket.send({"type": "message.send", "content": "fine", "client_msg_id": 8})
        assert (await socket.next("ack"))["client_msg_id"] == 8


async def test_edits_and_deletes_reach_the_sockets(stack, room: Room):
    anna = await room.join("Anna")
    message = await room.post(anna, "draft")
    url = f"{room.messages_url}/{message['id']}"
    async with chat_socket(stack.url, room.id, room.host) as socket:
        edited = await room.chat.put(url, json={"content": "final"}, headers=hdr(anna.pid))
        updated = await socket.next("message.updated")
        assert set(updated) == {"type", "message"} and set(updated["message"]) == MESSAGE_KEYS
        assert updated["message"] == edited.json()
        assert (await room.chat.delete(url, headers=hdr(anna.pid))).status_code == 204
        deleted = await socket.next("message.deleted")
        assert deleted == {"type": "message.deleted", "message_id": message["id"]}


async def test_a_join_shows_participant_joined_and_its_system_message(stack, room: Room):
    async with chat_socket(stack.url, room.id, room.host) as socket:
        anna = await room.join("Anna", settle=False)
        joined = await socket.next("participant.joined")
        assert set(joined) == {"type", "participant"}
        assert set(joined["participant"]) == PARTICIPANT_KEYS
        assert joined["participant"]["id"] == anna.public_id
        system = await socket.created("Anna joined")
        assert system["message_type"] == "system" and system["sender_id"] is None
    no_secrets(room, socket)


async def test_a_leave_shows_participant_left_to_the_others_and_closes_the_leavers_socket(stack, room: Room):
    anna = await room.join("Anna")
    async with (
        chat_socket(stack.url, room.id, room.host) as host,
        chat_socket(stack.url, room.id, anna) as leaver,
    ):
        await room.leave(anna)
        left = await host.next("participant.left")
        assert left["participant"]["id"] == anna.public_id
        assert set(left["participant"]) == PARTICIPANT_KEYS
        assert (await host.created("Anna left"))["message_type"] == "system"
        assert await leaver.closed() == 4403


async def test_a_kicked_participants_socket_closes_with_4403(stack, room: Room):
    bob = await room.join("Bob")
    async with (
        chat_socket(stack.url, room.id, room.host) as host,
        chat_socket(stack.url, room.id, bob) as kicked,
    ):
        await room.kick(bob)
        assert await kicked.closed() == 4403
        assert (await host.next("participant.left"))["participant"]["id"] == bob.public_id
        await host.created("Bob was removed by the host")
    async with raw_socket(stack.url, room.id) as again:
        await again.send({"type": "auth", "participant_id": bob.pid, "after": None})
        assert await again.closed() == 4403


async def test_ending_the_room_sends_room_ended_then_closes_every_socket_4410(stack, room: Room):
    anna = await room.join("Anna")  # settled: the join's frames are past, end comes next
    async with (
        chat_socket(stack.url, room.id, room.host) as host,
        chat_socket(stack.url, room.id, anna) as guest,
    ):
        await room.end()
        for socket in (host, guest):
            assert await socket.recv() == {"type": "room.ended"}
            assert await socket.closed() == 4410
    async with raw_socket(stack.url, room.id) as late:
        await late.send({"type": "auth", "participant_id": room.host.pid, "after": None})
        assert await late.closed() == 4410


# --- 5: close codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first_frame, code",
    [
        ("not json", 4400),
        (b"\x00\x01", 4400),
        ('{"type": "auth", "participant_id": "me", "after": null}', 4401),
        ('{"type": "auth", "after": null}', 4401),
        ('{"type": "message.send", "content": "hi"}', 4401),
        ("[]", 4400),
    ],
    ids=["not-json", "binary", "bad-participant-id", "no-participant-id", "not-auth", "array"],
)
async def test_a_bad_first_frame_closes_the_socket(stack, room: Room, first_frame, code):
    async with raw_socket(stack.url, room.id) as socket:
        await socket.send(first_frame)
        assert await socket.closed() == code


async def test_auth_with_a_malformed_after_closes_4400(stack, room: Room):
    async with raw_socket(stack.url, room.id) as socket:
        await socket.send({"type": "auth", "participant_id": room.host.pid, "after": "yesterday"})
        assert await socket.closed() == 4400


async def test_a_malformed_header_on_the_upgrade_closes_4401(stack, room: Room):
    async with raw_socket(stack.url, room.id, headers={"X-Participant-ID": "me"}) as socket:
        assert await socket.closed() == 4401


async def test_a_stranger_is_closed_with_4403(stack, room: Room):
    async with raw_socket(stack.url, room.id) as socket:
        await socket.send({"type": "auth", "participant_id": new_pid(), "after": None})
        assert await socket.closed() == 4403


@pytest.mark.parametrize("room_id", [str(uuid.uuid4()), "nope"])
async def test_an_unknown_room_is_closed_with_4404(stack, room_id):
    async with raw_socket(stack.url, room_id) as socket:
        with contextlib.suppress(websockets.ConnectionClosed):  # a malformed id closes at once
            await socket.send({"type": "auth", "participant_id": new_pid(), "after": None})
        assert await socket.closed() == 4404


@pytest.mark.parametrize(
    "frame",
    ["nope", b"\x01", '{"type": "shout"}', '{"content": "x"}', "3"],
    ids=["not-json", "binary", "unknown-type", "no-type", "not-an-object"],
)
async def test_a_bad_frame_after_auth_closes_4400(stack, room: Room, frame):
    async with chat_socket(stack.url, room.id, room.host) as socket:
        await socket.send(frame)
        assert await socket.closed() == 4400


async def test_a_repeated_auth_frame_is_harmless(stack, room: Room):
    async with chat_socket(stack.url, room.id, room.host) as socket:
        await socket.send({"type": "auth", "participant_id": room.host.pid, "after": None})
        await socket.send({"type": "message.send", "content": "still open", "client_msg_id": 1})
        assert (await socket.next("ack"))["message"]["content"] == "still open"


async def test_frames_carry_json_objects_with_a_type(stack, room: Room):
    async with chat_socket(stack.url, room.id, room.host) as socket:
        await room.post(room.host, "x")
        await socket.next("message.created")
    for text in socket.texts:
        assert isinstance(json.loads(text), dict) and "type" in json.loads(text)
