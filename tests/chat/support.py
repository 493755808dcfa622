"""Rooms, members and sockets for the chat tests, driven through the public API."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support import hdr, new_pid

MESSAGE_KEYS = {
    "id",
    "room_id",
    "sender_id",
    "display_name",
    "message_type",
    "content",
    "created_at",
    "edited_at",
    "system",
}


@dataclass
class Member:
    pid: str  # the secret participant_id
    public_id: str
    name: str


@dataclass
class Room:
    """A room made through the API. `rooms` answers /api/v1/rooms, `chat` the chat routes
    (both the gateway in e2e tests)."""

    rooms: httpx.AsyncClient
    chat: httpx.AsyncClient
    id: str = ""
    host: Member = field(default_factory=lambda: Member("", "", ""))
    members: list[Member] = field(default_factory=list)

    @classmethod
    async def create(
        cls, rooms: httpx.AsyncClient, chat: httpx.AsyncClient | None = None, host_name: str = "Host"
    ) -> "Room":
        room = cls(rooms, chat or rooms)
        pid = new_pid()
        response = await rooms.post(
            "/api/v1/rooms", json={"title": "Chat test", "display_name": host_name}, headers=hdr(pid)
        )
        assert response.status_code == 201, response.text
        body = response.json()
        room.id = body["room"]["id"]
        room.host = Member(pid, body["participant"]["id"], host_name)
        room.members.append(room.host)
        return room

    async def join(self, name: str = "Anna", settle: bool = True) -> Member:
        """A new member; with `settle`, once its "joined" line is posted, so that what a test
        does next is not interleaved with it."""
        pid = new_pid()
        response = await self.rooms.post(
            f"/api/v1/rooms/{self.id}/join", json={"display_name": name}, headers=hdr(pid)
        )
        assert response.status_code == 201, response.text
        member = Member(pid, response.json()["id"], name)
        self.members.append(member)
        if settle:
            await self.wait_for_system(f"{name} joined")
        return member

    async def leave(self, member: Member) -> None:
        response = await self.rooms.post(f"/api/v1/rooms/{self.id}/leave", headers=hdr(member.pid))
        assert response.status_code == 204, response.text

    async def kick(self, member: Member) -> None:
        response = await self.rooms.post(
            f"/api/v1/rooms/{self.id}/participants/{member.public_id}/kick",
            headers=hdr(self.host.pid),
        )
        assert response.status_code == 204, response.text

    async def end(self) -> None:
        response = await self.rooms.post(f"/api/v1/rooms/{self.id}/end", headers=hdr(self.host.pid))
        assert response.status_code == 200, response.text

    @property
    def messages_url(self) -> str:
        return f"/api/v1/rooms/{self.id}/chat/messages"

    async def post(self, member: Member, content: str) -> dict[str, Any]:
        response = await self.chat.post(self.messages_url, json={"content": content}, headers=hdr(member.pid))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def history(self, member: Member | None = None, **params: Any) -> list[dict[str, Any]]:
        member = member or self.host
        response = await self.chat.get(self.messages_url, params=params, headers=hdr(member.pid))
        assert response.status_code == 200, response.text
        return response.json()["messages"]  # type: ignore[no-any-return]

    async def wait_for_system(self, content: str, timeout: float = 10) -> dict[str, Any]:
        """The system message with this content, once the event consumer posted it."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                m
                for m in await self.history(limit=200)
                if m["message_type"] == "system" and m["content"] == content
            ]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no system message {content!r}"
            await asyncio.sleep(0.05)

    def secrets(self) -> list[str]:
        return [m.pid for m in self.members]


def assert_message(message: dict[str, Any]) -> None:
    """The Message shape of docs/api.md, to the letter."""
    assert set(message) == MESSAGE_KEYS, message
    assert message["message_type"] in ("user", "system")
    assert message["created_at"].endswith("Z") and len(message["created_at"]) == 24
    if message["edited_at"] is not None:
        assert message["edited_at"].endswith("Z")
    if message["message_type"] == "user":
        assert message["system"] is None
    else:
        assert set(message["system"]) == {"event", "display_name"}
        assert message["system"]["event"] in (
            "joined",
            "left",
            "kicked",
            "timed_out",
            "host_changed",
            "room_ended",
        )


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, "a participant_id leaked"
    assert "participant_id" not in text


# --- WebSockets --------------------------------------------------------------------------


class Socket:
    """A chat WebSocket client that keeps every frame it read. Frames a `next(kind)` skipped
    stay unread for later calls."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[dict[str, Any]] = []
        self.texts: list[str] = []
        self.unread: list[dict[str, Any]] = []

    async def _read(self, timeout: float) -> dict[str, Any]:
        text = await asyncio.wait_for(self.connection.recv(), timeout)
        assert isinstance(text, str)
        self.texts.append(text)
        frame: dict[str, Any] = json.loads(text)
        self.frames.append(frame)
        return frame

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        """The oldest frame not consumed yet."""
        if self.unread:
            return self.unread.pop(0)
        return await self._read(timeout)

    async def next(self, kind: str, timeout: float = 5, **match: Any) -> dict[str, Any]:
        """The oldest unconsumed frame of type `kind` (whose top-level fields equal `match`)."""
        return await self.first(
            lambda f: f["type"] == kind and all(f.get(k) == v for k, v in match.items()), timeout
        )

    async def created(self, content: str, timeout: float = 5) -> dict[str, Any]:
        """The message of the oldest unconsumed message.created frame with this content."""
        frame = await self.first(
            lambda f: f["type"] == "message.created" and f["message"]["content"] == content,
            timeout,
        )
        return frame["message"]  # type: ignore[no-any-return]

    async def first(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict[str, Any]:
        for frame in self.unread:
            if wanted(frame):
                self.unread.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            frame = await self._read(max(deadline - time.monotonic(), 0.01))
            if wanted(frame):
                return frame
            self.unread.append(frame)

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def closed(self, timeout: float = 5) -> int:
        """Reads until the server closes; returns the close code."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.unread.append(await self._read(max(deadline - time.monotonic(), 0.01)))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code

    async def close(self) -> None:
        await self.connection.close()


def ws_url(base: str, room_id: str, query: str = "") -> str:
    return base.replace("http://", "ws://") + f"/ws/chat/{room_id}" + query


@contextlib.asynccontextmanager
async def raw_socket(
    base: str, room_id: str, headers: dict[str, str] | None = None, query: str = "", **options: Any
) -> AsyncIterator[Socket]:
    async with websockets.connect(
        ws_url(base, room_id, query), additional_headers=headers, open_timeout=5, **options
    ) as connection:
        yield Socket(connection)


@contextlib.asynccontextmanager
async def chat_socket(
    base: str, room_id: str, member: Member, after: str | None = None, **options: Any
) -> AsyncIterator[Socket]:
    """An authenticated socket that has read its `ready` frame."""
    async with raw_socket(base, room_id, **options) as socket:
        await socket.send({"type": "auth", "participant_id": member.pid, "after": after})
        ready = await socket.recv()
        assert ready["type"] == "ready", ready
        yield socket


class ResumingReader:
    """One member's chat view that outlives its socket: on any loss it reconnects through the
    gateway (to whichever replica it picks) with `after` = the last message it saw."""

    @staticmethod
    async def start(readers: "list[ResumingReader]", stop: asyncio.Event) -> "list[asyncio.Task[None]]":
        """Runs the readers; returns once each has its first socket."""
        tasks = [asyncio.create_task(reader.run(stop)) for reader in readers]
        async with asyncio.timeout(30):
            await asyncio.gather(*(reader.live.wait() for reader in readers))
        return tasks

    def __init__(self, base: str, room: Room, member: Member) -> None:
        self.base, self.room, self.member = base, room, member
        self.seen: list[str] = []
        self.resumes = 0
        # Set once the first socket is ready: what is posted from then on reaches this reader
        # (a first socket has no `after`, so it replays nothing posted before it).
        self.live = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            after = self.seen[-1] if self.seen else None
            try:
                async with chat_socket(self.base, self.room.id, self.member, after=after) as socket:
                    self.live.set()
                    while not stop.is_set():
                        try:
                            frame = await socket.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        if frame["type"] == "message.created" and frame["message"]["message_type"] == "user":
                            self.seen.append(frame["message"]["id"])
            # Any failure, the gateway's answer to the upgrade among them: reconnect.
            except (websockets.WebSocketException, OSError, TimeoutError, AssertionError):
                self.resumes += 1
                await asyncio.sleep(0.05)


class SteadyPoster:
    """One member posting every `every` seconds until stopped, recording which posts were
    accepted (201) and when each attempt started."""

    def __init__(self, client: httpx.AsyncClient, room: Room, member: Member, every: float) -> None:
        self.client, self.room, self.member, self.every = client, room, member, every
        self.accepted: list[str] = []
        self.attempts: list[tuple[float, bool]] = []  # (monotonic start, accepted)

    async def run(self, stop: asyncio.Event) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                response = await self.client.post(
                    self.room.messages_url,
                    json={"content": f"{self.member.name} {n}"},
                    headers=hdr(self.member.pid),
                )
                ok = response.status_code == 201
            except httpx.HTTPError:
                ok = False
            if ok:
                self.accepted.append(response.json()["id"])
            self.attempts.append((started, ok))
            await asyncio.sleep(self.every)

    def outcomes(self, start: float, end: float) -> list[bool]:
        """Whether each attempt started in [start, end) was accepted."""
        return [ok for started, ok in self.attempts if start <= started < end]
