"""Chat as several processes: fan-out across replicas, and a replica that is stopped."""

import asyncio
import time
import uuid

import httpx
import pytest

from tests.chat.support import Room, chat_socket
from tests.support import hdr
from veche.local.stack import Process, free_port, healthy, uvicorn_cmd

pytestmark = pytest.mark.e2e


def replica(port: int) -> str:
    return f"http://127.0.0.1:{port}"


async def test_a_message_posted_to_one_replica_reaches_sockets_on_every_replica(stack, gw):
    first, second = stack.service_urls("chat")[:2]
    room = await Room.create(gw)
    anna = await room.join("Anna")
    async with (
        chat_socket(first, room.id, room.host) as on_first,
        chat_socket(second, room.id, anna) as on_second,
        httpx.AsyncClient(base_url=first, timeout=15) as direct,
    ):
        response = await direct.post(
            room.messages_url, json={"content": "to everyone"}, headers=hdr(room.host.pid)
        )
        assert response.status_code == 201
        for socket in (on_first, on_second):
            assert (await socket.created("to everyone"))["id"] == response.json()["id"]
        await on_second.send({"type": "message.send", "content": "and back", "client_msg_id": 1})
        acked = (await on_second.next("ack"))["message"]
        assert (await on_first.created("and back")) == acked


async def test_sigterm_closes_sockets_with_1012_and_the_client_resumes_with_after(stack, gw):
    port = free_port()
    env = {**stack.process("chat").env, "CHAT_EVENTS_DURABLE": f"chat-{uuid.uuid4().hex[:8]}"}
    process = Process("chat-sigterm", uvicorn_cmd("veche.chat.main:create_app", port), port, env)
    stack.start_process(process)
    try:
        deadline = time.monotonic() + 30
        while not healthy(f"{replica(port)}/healthz"):
            assert process.popen is not None and process.popen.poll() is None, "chat exited"
            assert time.monotonic() < deadline, "chat did not start"
            await asyncio.sleep(0.1)
        room = await Room.create(gw)
        async with chat_socket(replica(port), room.id, room.host) as socket:
            seen = await room.post(room.host, "seen")
            assert (await socket.created("seen"))["id"] == seen["id"]
            stopping = asyncio.create_task(asyncio.to_thread(stack.stop_process, process))
            assert await socket.closed(timeout=10) == 1012
            await stopping
        assert process.popen is not None and process.popen.poll() is not None
        missed = [await room.post(room.host, f"while away {i}") for i in range(3)]
        async with chat_socket(stack.url, room.id, room.host, after=seen["id"]) as resumed:
            replayed = [(await resumed.next("message.created"))["message"] for _ in missed]
        assert replayed == missed
    finally:
        stack.stop_process(process)
