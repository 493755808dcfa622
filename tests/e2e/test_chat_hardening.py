"""Hostile input on the chat socket through the whole stack (hardening pass): a bad frame gets
an error frame and the socket stays; frames nested past the parser close with 4400; a query
string on the socket URL is never logged."""

import json

import pytest

from tests.chat.support import Room, chat_socket, raw_socket

pytestmark = pytest.mark.e2e


async def test_a_bad_frame_on_the_socket_gets_an_error_frame_and_the_socket_stays(stack, gw):
    room = await Room.create(gw)
    await room.wait_for_system("Host joined")
    anna = await room.join("Anna")
    async with chat_socket(stack.url, room.id, anna) as socket:
        await socket.send('{"type": "message.send", "content": "a\\ud800", "client_msg_id": "x"}')
        error = await socket.next("error")
        assert error["code"] == "validation_error" and error["client_msg_id"] == "x"
        await socket.send({"type": "message.send", "content": "still open", "client_msg_id": "y"})
        assert (await socket.next("ack"))["message"]["content"] == "still open"


@pytest.mark.parametrize(
    "frame", ["[" * 8000 + "]" * 8000, '{"type": "message.send", "n": ' + "9" * 5000 + "}"]
)
async def test_a_deeply_nested_or_huge_number_frame_closes_with_4400(stack, gw, frame: str):
    room = await Room.create(gw)
    anna = await room.join("Anna")
    async with chat_socket(stack.url, room.id, anna, max_size=None) as socket:
        await socket.send(frame)
        assert await socket.closed() == 4400


async def test_a_query_string_on_the_socket_url_is_never_logged(stack, gw):
    room = await Room.create(gw)
    anna = await room.join("Anna")
    marker = "leakymarker" + anna.pid.replace("-", "")
    async with raw_socket(stack.url, room.id, query=f"?participant_id={marker}") as socket:
        await socket.send(json.dumps({"type": "auth", "participant_id": anna.pid, "after": None}))
        assert (await socket.recv())["type"] == "ready"
    for log in stack.run_dir.glob("*.log"):
        assert marker not in log.read_text(errors="replace"), log.name
