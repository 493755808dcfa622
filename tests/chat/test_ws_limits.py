"""Socket limits and failures, against chat servers in-process with settings of their own:
slow consumers, rate limits, the auth deadline, presence, and losing Redis."""

import asyncio
import contextlib
import random
import socket as socketlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from tests.chat.conftest import Served
from tests.chat.support import Room, chat_socket, raw_socket
from tests.support import hdr
from veche.common import keys


@contextlib.asynccontextmanager
async def room_on(served: Served, rooms_api: httpx.AsyncClient) -> AsyncIterator[Room]:
    """A room whose chat calls go to this chat server; its "Host joined" is already posted."""
    async with httpx.AsyncClient(base_url=served.url, timeout=15) as chat:
        room = await Room.create(rooms_api, chat)
        await room.wait_for_system("Host joined")
        yield room


def small_buffer_socket(base_url: str) -> socketlib.socket:
    """A TCP connection with a tiny receive buffer, so a client that stops reading pushes back
    on the server after a few frames instead of after megabytes."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socketlib.socket()
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return sock


@pytest.mark.parametrize("asgi_path", [False, True], ids=["wire", "asgi"])
async def test_a_socket_that_never_reads_is_dropped_while_another_gets_every_message_in_1s(
    rooms_api, chat_server, asgi_path
):
    # Random CJK: about 12 KB per frame, which permessage-deflate cannot shrink much.
    rng = random.Random(4)
    contents = ["".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(4000)) for _ in range(8)]
    limits = {"chat_ws_send_queue": 8, "chat_ws_send_buffer_bytes": 64 * 1024}
    async with chat_server(asgi_path=asgi_path, **limits) as served, room_on(served, rooms_api) as room:
        anna = await room.join("Anna")
        sent_at: dict[str, float] = {}
        got_at: dict[str, float] = {}
        slow_sock = small_buffer_socket(served.url)
        async with (
            chat_socket(served.url, room.id, anna, sock=slow_sock, max_queue=1) as slow,
            chat_socket(served.url, room.id, room.host) as fast,
        ):

            async def read_fast() -> None:
                while True:
                    frame = await fast.next("message.created", timeout=30)
                    got_at[frame["message"]["id"]] = time.monotonic()

            def slow_dropped() -> bool:
                sockets = served.app.state.ctx.fanout.room_sockets(uuid.UUID(room.id))
                return any(s.member_id == anna.public_id and s.close_code for s in sockets)

            async def post(i: int) -> None:
                message = await room.post(room.host, contents[i % len(contents)])
                sent_at[message["id"]] = time.monotonic()

            reader = asyncio.create_task(read_fast())
            # The kernel buffers megabytes before the server feels a client that stops
            # reading; past those, the socket's own queue overflows and it is dropped.
            while not slow_dropped():
                assert len(sent_at) < 2000, "the slow socket was never dropped"
                await post(len(sent_at))
            for i in range(5):  # life goes on for the others
                await post(i)
            deadline = time.monotonic() + 5
            while not set(sent_at) <= set(got_at):
                assert time.monotonic() < deadline, "the reading socket missed messages"
                await asyncio.sleep(0.02)
            reader.cancel()
            worst = max(got_at[i] - sent_at[i] for i in sent_at)
            assert worst < 1.0, f"a message took {worst:.2f}s to reach the reading socket"
            # Only now does the slow client read: what was buffered for it, then the close.
            assert await slow.closed(timeout=10) == 1013
            delivered = [f for f in slow.frames if f["type"] == "message.created"]
            assert len(delivered) < len(sent_at)


async def test_a_socket_that_keeps_sending_past_the_rate_limit_is_closed_4429(rooms_api, chat_server):
    settings = {"rate_limit_chat_send": "3/minute", "chat_ws_rate_strikes": 3}
    async with chat_server(**settings) as served, room_on(served, rooms_api) as room:
        async with chat_socket(served.url, room.id, room.host) as socket:
            for i in range(3):
                await socket.send({"type": "message.send", "content": f"m{i}", "client_msg_id": i})
                assert (await socket.next("ack"))["client_msg_id"] == i
            for i in range(3, 6):
                await socket.send({"type": "message.send", "content": f"m{i}", "client_msg_id": i})
                error = await socket.next("error")
                assert error["code"] == "rate_limited" and error["client_msg_id"] == i
            assert await socket.closed() == 4429


async def test_a_socket_without_an_auth_frame_in_time_is_closed_4401(rooms_api, chat_server):
    async with chat_server(chat_ws_auth_timeout_seconds=0.5) as served:
        room = await Room.create(rooms_api)
        async with raw_socket(served.url, room.id) as socket:
            started = time.monotonic()
            assert await socket.closed() == 4401
            assert 0.4 < time.monotonic() - started < 3


async def test_an_open_socket_keeps_its_member_present_for_the_janitor(rooms_api, chat_server, redis_client):
    async with (
        chat_server(presence_refresh_seconds=0.2) as served,
        room_on(served, rooms_api) as room,
    ):
        anna = await room.join("Anna")
        key = keys.room_presence(room.id)
        async with chat_socket(served.url, room.id, anna):
            first = await redis_client.zscore(key, anna.public_id)
            assert first is not None
            deadline = time.monotonic() + 5
            while await redis_client.zscore(key, anna.public_id) <= first:
                assert time.monotonic() < deadline, "presence was not refreshed"
                await asyncio.sleep(0.05)


async def test_a_socket_whose_membership_vanished_without_any_event_is_closed_4403(
    rooms_api, chat_server, redis_client
):
    async with (
        chat_server(presence_refresh_seconds=0.2) as served,
        room_on(served, rooms_api) as room,
    ):
        anna = await room.join("Anna")
        async with chat_socket(served.url, room.id, anna) as socket:
            # As if the event of a kick was lost: only the membership hash knows.
            await redis_client.hdel(keys.room_participants(room.id), anna.pid)
            assert await socket.closed() == 4403


async def test_losing_the_fanout_connection_closes_sockets_1011_and_recovers(
    rooms_api, chat_server, redis_client
):
    async with chat_server() as served, room_on(served, rooms_api) as room:
        name = f"veche-chat-fanout-{served.app.state.ctx.fanout.replica}"
        async with chat_socket(served.url, room.id, room.host) as socket:
            ours = [c for c in await redis_client.client_list() if c["name"] == name]
            assert len(ours) == 1
            await redis_client.execute_command("CLIENT", "KILL", "ID", ours[0]["id"])
            # Whatever was published while it reconnects would be lost: the client must resume.
            assert await socket.closed() == 1011
        deadline = time.monotonic() + 10
        while not served.app.state.ctx.fanout.connected:
            assert time.monotonic() < deadline, "the fan-out did not reconnect"
            await asyncio.sleep(0.05)
        async with chat_socket(served.url, room.id, room.host) as again:
            await room.post(room.host, "back")
            await again.created("back")


async def test_a_socket_while_redis_is_down_is_closed_1011(chat_server):
    async with chat_server(redis_url="redis://127.0.0.1:1/0", dependency_timeout_seconds=1) as served:
        headers = hdr(str(uuid.uuid4()))
        async with raw_socket(served.url, str(uuid.uuid4()), headers=headers) as socket:
            assert await socket.closed(timeout=10) == 1011


async def test_a_frame_over_the_size_limit_closes_1009(rooms_api, chat_server):
    async with chat_server(chat_ws_max_frame_bytes=16 * 1024) as served:
        room = await Room.create(rooms_api)
        async with chat_socket(served.url, room.id, room.host) as socket:
            with contextlib.suppress(websockets.ConnectionClosed):
                await socket.send({"type": "message.send", "content": "x" * 20_000})
            assert await socket.closed() == 1009


async def test_an_idle_fanout_connection_answers_its_liveness_pings_and_stays_up(
    rooms_api, chat_server, monkeypatch
):
    from veche.chat.fanout import Fanout

    monkeypatch.setattr(Fanout, "PING_SECONDS", 0.1)
    async with (
        chat_server(dependency_timeout_seconds=0.3) as served,
        room_on(served, rooms_api) as room,
    ):
        async with chat_socket(served.url, room.id, room.host) as socket:
            await asyncio.sleep(2.0)  # many liveness windows (0.5 s) with nothing published
            assert served.app.state.ctx.fanout.connected
            await room.post(room.host, "still live")
            await socket.created("still live")


async def test_rest_and_socket_sends_share_one_limit_and_the_socket_stays_open(rooms_api, chat_server):
    settings = {"rate_limit_chat_send": "3/minute", "chat_ws_rate_strikes": 10}
    async with chat_server(**settings) as served, room_on(served, rooms_api) as room:
        anna = await room.join("Anna")
        await room.post(anna, "rest 1")
        await room.post(anna, "rest 2")
        async with chat_socket(served.url, room.id, anna) as socket:
            await socket.send({"type": "message.send", "content": "ws 3", "client_msg_id": "a"})
            assert (await socket.next("ack"))["client_msg_id"] == "a"
            await socket.send({"type": "message.send", "content": "ws 4", "client_msg_id": "b"})
            error = await socket.next("error")
            assert error == {**error, "type": "error", "code": "rate_limited", "client_msg_id": "b"}
            over = await room.chat.post(room.messages_url, json={"content": "rest 5"}, headers=hdr(anna.pid))
            assert over.status_code == 429
            # The socket is still open and still hears the room.
            await room.post(room.host, "the host is not limited by Anna")
            heard = await socket.created("the host is not limited by Anna")
            assert heard["sender_id"] == room.host.public_id


@pytest.mark.parametrize("asgi_path", [False, True], ids=["wire", "asgi"])
async def test_sockets_joining_while_four_members_post_each_get_every_message_once_in_order(
    rooms_api, chat_server, asgi_path
):
    """Live writes (the wire) and the replay stitch without a gap or a duplicate: readers
    connect with `after` at staggered moments while four members post concurrently."""
    async with chat_server(asgi_path=asgi_path) as served, room_on(served, rooms_api) as room:
        posters = [room.host] + [await room.join(f"P{i}") for i in range(3)]
        first = await room.post(room.host, "start")
        per_poster = 25
        posted: list[str] = []

        async def post_many(member, n: int) -> None:
            for i in range(n):
                posted.append((await room.post(member, f"post {member.pid[:4]}-{i}"))["id"])

        readers_count = 8
        have_all: list[int] = []
        all_read = asyncio.Event()

        async def read_all(delay: float) -> list[str]:
            await asyncio.sleep(delay)
            seen: list[str] = []
            async with chat_socket(served.url, room.id, room.host, after=first["id"]) as socket:
                while len(seen) < per_poster * len(posters):
                    frame = await socket.next("message.created", timeout=20)
                    if frame["message"]["content"].startswith("post "):
                        seen.append(frame["message"]["id"])
                have_all.append(1)
                if len(have_all) == readers_count:
                    # Every reader is past its replay: each socket writes live (on the wire).
                    sockets = served.app.state.ctx.fanout.room_sockets(uuid.UUID(room.id))
                    assert len(sockets) == readers_count
                    assert all(s.live is (not asgi_path) for s in sockets)
                    all_read.set()
                await all_read.wait()
                # Nothing more comes: no duplicate after the last one.
                with pytest.raises(TimeoutError):
                    await socket.first(lambda f: f["type"] == "message.created", timeout=0.3)
            return seen

        readers = [asyncio.create_task(read_all(0.05 * i)) for i in range(readers_count)]
        await asyncio.gather(*(post_many(member, per_poster) for member in posters))
        expected = sorted(posted, key=lambda i: uuid.UUID(i).int)
        for seen in await asyncio.gather(*readers):
            assert seen == expected
