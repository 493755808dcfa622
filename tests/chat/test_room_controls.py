"""Chat's part of the room controls (docs/api.md, Room controls, End-to-end encrypted rooms):
the new frames (room.updated, participant.updated, hosts-only lobby frames), the hand-over's
system message, and the content rule of e2ee rooms."""

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.chat.conftest import Served
from tests.chat.support import Member, Room, Socket, chat_socket
from tests.support import hdr, new_pid
from veche.common import keys


@contextlib.asynccontextmanager
async def room_on(served: Served, rooms_api: httpx.AsyncClient, **body) -> AsyncIterator[Room]:
    """A room (created with `body`) whose chat calls go to this chat server."""
    async with httpx.AsyncClient(base_url=served.url, timeout=15) as chat:
        room = Room(rooms_api, chat)
        pid = new_pid()
        response = await rooms_api.post(
            "/api/v1/rooms", json={"title": "Controls", "display_name": "Host", **body}, headers=hdr(pid)
        )
        assert response.status_code == 201, response.text
        room.id = response.json()["room"]["id"]
        room.host = Member(pid, response.json()["participant"]["id"], "Host")
        room.members.append(room.host)
        await room.wait_for_system("Host joined")
        yield room


async def _no_frame_of(socket: Socket, kinds: set[str], until: str) -> dict:
    """Reads up to the next frame of type `until`, asserting none of `kinds` came before it."""
    while True:
        frame = await socket.recv()
        assert frame["type"] not in kinds, frame
        if frame["type"] == until:
            return frame


async def test_room_updated_and_participant_updated_frames_reach_every_socket(chat_server, rooms_api):
    async with chat_server() as served, room_on(served, rooms_api) as room:
        anna = await room.join("Anna")
        async with (
            chat_socket(served.url, room.id, room.host) as host_socket,
            chat_socket(served.url, room.id, anna) as anna_socket,
        ):
            response = await rooms_api.patch(
                f"/api/v1/rooms/{room.id}",
                json={"title": "Renamed", "locked": True},
                headers=hdr(room.host.pid),
            )
            assert response.status_code == 200
            for socket in (host_socket, anna_socket):
                frame = await socket.next("room.updated")
                assert set(frame) == {"type", "room"}
                assert frame["room"]["title"] == "Renamed" and frame["room"]["locked"] is True

            promoted = await rooms_api.post(
                f"/api/v1/rooms/{room.id}/participants/{anna.public_id}/promote", headers=hdr(room.host.pid)
            )
            assert promoted.status_code == 200
            for socket in (host_socket, anna_socket):
                frame = await socket.next("participant.updated")
                assert set(frame) == {"type", "participant"}
                assert frame["participant"]["id"] == anna.public_id and frame["participant"]["role"] == "host"

            hand = await rooms_api.post(
                f"/api/v1/rooms/{room.id}/hand", json={"raised": True}, headers=hdr(anna.pid)
            )
            for socket in (host_socket, anna_socket):
                frame = await socket.next("participant.updated")
                assert frame["participant"]["hand_raised_at"] == hand.json()["hand_raised_at"]
            # Neither a promotion nor a hand posts a system message.
            contents = [m["content"] for m in await room.history(limit=200) if m["message_type"] == "system"]
            assert contents == ["Host joined", "Anna joined"]


async def test_the_hand_over_posts_a_host_changed_system_message(chat_server, rooms_api):
    async with chat_server() as served, room_on(served, rooms_api) as room:
        anna = await room.join("Anna")
        await room.join("Boris")
        async with chat_socket(served.url, room.id, anna) as anna_socket:
            await room.leave(room.host)
            frame = await anna_socket.next("participant.updated")
            assert frame["participant"]["id"] == anna.public_id and frame["participant"]["role"] == "host"
            created = await anna_socket.next("message.created")
            while created["message"]["content"] != "Anna is now the host":
                created = await anna_socket.next("message.created")
            message = created["message"]
            assert message["message_type"] == "system" and message["sender_id"] is None
            assert message["system"] == {"event": "host_changed", "display_name": "Anna"}
        history = await room.history(anna, limit=200)
        assert [m["content"] for m in history if m["message_type"] == "system"][-2:] == [
            "Host left",
            "Anna is now the host",
        ]


async def test_lobby_frames_reach_host_sockets_only_and_follow_role_changes(chat_server, rooms_api):
    async with chat_server() as served, room_on(served, rooms_api) as room:
        anna = await room.join("Anna")
        await rooms_api.patch(f"/api/v1/rooms/{room.id}", json={"lobby": True}, headers=hdr(room.host.pid))
        lobby = {"lobby.requested", "lobby.resolved"}
        async with (
            chat_socket(served.url, room.id, room.host) as host_socket,
            chat_socket(served.url, room.id, anna) as anna_socket,
        ):
            knock = await rooms_api.post(
                f"/api/v1/rooms/{room.id}/join", json={"display_name": "Knocker"}, headers=hdr(new_pid())
            )
            assert knock.status_code == 202
            request_id = knock.json()["request_id"]
            requested = await host_socket.next("lobby.requested")
            assert set(requested) == {"type", "request"}
            assert requested["request"]["id"] == request_id
            assert requested["request"]["display_name"] == "Knocker"
            assert set(requested["request"]) == {"id", "display_name", "requested_at"}
            denied = await rooms_api.post(
                f"/api/v1/rooms/{room.id}/lobby/{request_id}/deny", headers=hdr(room.host.pid)
            )
            assert denied.status_code == 204
            resolved = await host_socket.next("lobby.resolved")
            assert resolved == {"type": "lobby.resolved", "request_id": request_id, "admitted": False}
            # A frame for everybody after them: Anna's socket got no lobby frame before it.
            await rooms_api.patch(
                f"/api/v1/rooms/{room.id}", json={"title": "Mark"}, headers=hdr(room.host.pid)
            )
            await _no_frame_of(anna_socket, lobby, until="room.updated")

            # Promoted, Anna's socket gets them too; the demoted host's socket no longer does.
            await rooms_api.post(
                f"/api/v1/rooms/{room.id}/participants/{anna.public_id}/promote", headers=hdr(room.host.pid)
            )
            await rooms_api.post(
                f"/api/v1/rooms/{room.id}/participants/{room.host.public_id}/demote", headers=hdr(anna.pid)
            )
            second = await rooms_api.post(
                f"/api/v1/rooms/{room.id}/join", json={"display_name": "Second"}, headers=hdr(new_pid())
            )
            assert second.status_code == 202
            frame = await anna_socket.next("lobby.requested")
            assert frame["request"]["id"] == second.json()["request_id"]
            await rooms_api.patch(f"/api/v1/rooms/{room.id}", json={"title": "Mark 2"}, headers=hdr(anna.pid))
            while True:
                frame = await host_socket.recv()
                if frame["type"] == "room.updated" and frame["room"]["title"] == "Mark 2":
                    break
                assert frame["type"] != "lobby.requested" or frame["request"]["display_name"] != "Second"


# --- end-to-end encrypted rooms -----------------------------------------------------------

CIPHERTEXT = "e2ee:v1:" + "q83vEjRWeJq83vEjRWeJ_-A" + "=="


async def test_an_e2ee_room_takes_only_e2ee_content_up_to_8000_characters(chat_server, rooms_api):
    async with chat_server() as served, room_on(served, rooms_api, e2ee=True) as room:
        stored = await room.post(room.host, CIPHERTEXT)
        assert stored["content"] == CIPHERTEXT
        longest = "e2ee:v1:" + "A" * (8000 - len("e2ee:v1:"))
        assert (await room.post(room.host, longest))["content"] == longest
        url = room.messages_url
        for bad in (
            "hello",
            "e2ee:v1:",
            "e2ee:v1:abc+def",
            "e2ee:v1:abc/def",
            "e2ee:v1:abc===",
            "e2ee:v2:abc",
            "e2ee:v1:abc def",
            longest + "A",
        ):
            response = await room.chat.post(url, json={"content": bad}, headers=hdr(room.host.pid))
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["code"] == "validation_error"
        edit = await room.chat.put(
            f"{url}/{stored['id']}", json={"content": "plain"}, headers=hdr(room.host.pid)
        )
        assert edit.status_code == 422 and edit.json()["code"] == "validation_error"
        edit = await room.chat.put(
            f"{url}/{stored['id']}", json={"content": CIPHERTEXT + "x"}, headers=hdr(room.host.pid)
        )
        assert edit.status_code == 422  # "=" only at the end
        edit = await room.chat.put(
            f"{url}/{stored['id']}", json={"content": "e2ee:v1:bmV3"}, headers=hdr(room.host.pid)
        )
        assert edit.status_code == 200
        # Over the socket too; system messages stay plain.
        async with chat_socket(served.url, room.id, room.host) as socket:
            await socket.send({"type": "message.send", "content": "plain", "client_msg_id": "p"})
            error = await socket.next("error", client_msg_id="p")
            assert error["code"] == "validation_error"
            await socket.send({"type": "message.send", "content": CIPHERTEXT, "client_msg_id": "c"})
            ack = await socket.next("ack", client_msg_id="c")
            assert ack["message"]["content"] == CIPHERTEXT
        system = [m for m in await room.history(limit=200) if m["message_type"] == "system"]
        assert system[0]["content"] == "Host joined"


async def test_a_plain_room_keeps_the_4000_character_rule(chat_server, rooms_api):
    async with chat_server() as served, room_on(served, rooms_api) as room:
        assert (await room.post(room.host, "x" * 4000))["content"] == "x" * 4000
        response = await room.chat.post(
            room.messages_url, json={"content": "x" * 4001}, headers=hdr(room.host.pid)
        )
        assert response.status_code == 422 and response.json()["code"] == "validation_error"
        assert (await room.post(room.host, CIPHERTEXT))["content"] == CIPHERTEXT  # just text here


@pytest.mark.parametrize("lost", ["field", "hash"])
async def test_chat_learns_the_e2ee_flag_again_when_redis_lost_it(chat_server, rooms_api, redis_client, lost):
    async with chat_server() as served, room_on(served, rooms_api, e2ee=True) as room:
        key = keys.room_participants(room.id)
        assert await redis_client.hget(key, keys.ROOM_E2EE_FIELD) == "1"
        if lost == "field":
            await redis_client.hdel(key, keys.ROOM_E2EE_FIELD)
        else:
            await redis_client.delete(key)
        response = await room.chat.post(
            room.messages_url, json={"content": "plain"}, headers=hdr(room.host.pid)
        )
        assert response.status_code == 422
        assert await redis_client.hget(key, keys.ROOM_E2EE_FIELD) == "1"
        assert (await room.post(room.host, CIPHERTEXT))["content"] == CIPHERTEXT
