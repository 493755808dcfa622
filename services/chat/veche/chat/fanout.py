"""Fan-out across replicas: the per-process hub that subscribes to the Redis pub/sub channels
of the rooms it has sockets for and hands every envelope (chat.frames) to those sockets.

Envelopes are published by the store's Lua scripts in the same step as the write they
describe, so every replica sees a room's changes in the order they were stored."""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import redis.asyncio as aioredis
from prometheus_client import Gauge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from veche.chat.frames import CLOSE_UNAVAILABLE, dumps
from veche.chat.settings import ChatSettings
from veche.common import keys
from veche.common.errors import Unavailable

log = logging.getLogger("veche.chat.fanout")

SUBSCRIBED_ROOMS = Gauge("veche_chat_subscribed_rooms", "Room channels this replica listens to")

# --- the hub -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One item of a socket's send queue: a frame's text, or a close."""

    text: str | None = None
    message_id: str | None = None
    close_code: int | None = None


class LocalSocket(Protocol):
    room_id: UUID
    member_id: str

    def deliver(self, item: Outgoing) -> None: ...

    def abort(self, code: int) -> None: ...


@dataclass(eq=False)
class _Channel:
    name: str
    sockets: set[LocalSocket] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: bool = False
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    unsubscribed: asyncio.Event = field(default_factory=asyncio.Event)


class Fanout:
    """One pub/sub connection per process. A room's channel is subscribed while this process
    holds a socket of that room; `attach` returns once Redis confirmed the subscription, so
    whatever is stored after it returns is also delivered live.

    The connection has no silent reconnect: when it breaks, every local socket is closed
    (1011) so its client resumes with `after` instead of missing what was published
    meanwhile."""

    PING_SECONDS = 5.0

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.timeout = settings.dependency_timeout_seconds
        self.replica = uuid.uuid4().hex
        self._control = f"chat:replica:{self.replica}"
        self._channels: dict[str, _Channel] = {}
        self._pubsub: Any = None
        self._client: aioredis.Redis | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="chat-fanout")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    def sockets(self) -> Iterator[LocalSocket]:
        for channel in list(self._channels.values()):
            yield from list(channel.sockets)

    def room_sockets(self, room_id: UUID) -> list[LocalSocket]:
        channel = self._channels.get(keys.chat_channel(room_id))
        return list(channel.sockets) if channel else []

    async def attach(self, socket: LocalSocket) -> None:
        """Registers the socket; returns when its room's channel is live. Unavailable when
        Redis cannot confirm the subscription in time."""
        name = keys.chat_channel(socket.room_id)
        while True:
            channel = self._channels.setdefault(name, _Channel(name))
            async with channel.lock:
                if self._channels.get(name) is not channel:
                    continue  # dropped while we waited for the lock: take the new one
                if not self.connected:
                    raise Unavailable("Chat fan-out is not connected to Redis")
                channel.sockets.add(socket)
                if channel.active:
                    return
                channel.subscribed.clear()
                try:
                    await self._pubsub.subscribe(name)
                    async with asyncio.timeout(self.timeout):
                        await channel.subscribed.wait()
                except Exception as exc:
                    self._forget(channel, socket)
                    raise Unavailable("Chat fan-out could not subscribe") from exc
                if not self.connected or self._channels.get(name) is not channel:
                    self._forget(channel, socket)
                    raise Unavailable("Chat fan-out lost Redis while subscribing")
                channel.active = True
                SUBSCRIBED_ROOMS.set(len(self._channels))
                return

    def _forget(self, channel: _Channel, socket: LocalSocket) -> None:
        channel.sockets.discard(socket)
        if not channel.sockets and not channel.active and self._channels.get(channel.name) is channel:
            self._channels.pop(channel.name, None)

    async def detach(self, socket: LocalSocket) -> None:
        name = keys.chat_channel(socket.room_id)
        channel = self._channels.get(name)
        if channel is None:
            return
        async with channel.lock:
            channel.sockets.discard(socket)
            if channel.sockets or self._channels.get(name) is not channel:
                return
            if channel.active and self.connected:
                channel.unsubscribed.clear()
                # Wait for the confirmation, so a later subscribe of this channel is never
                # confused with this one's answers.
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(name)
                    async with asyncio.timeout(self.timeout):
                        await channel.unsubscribed.wait()
            channel.active = False
            if not channel.sockets:
                self._channels.pop(name, None)
            SUBSCRIBED_ROOMS.set(len(self._channels))

    # --- the listener ----------------------------------------------------------------------

    async def _connect(self) -> None:
        timeout = self.settings.dependency_timeout_seconds
        url = self.settings.redis_cluster_url or self.settings.redis_url
        # Classic pub/sub is cluster-wide: one node of a cluster sees every channel.
        self._client = aioredis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=f"veche-chat-fanout-{self.replica}",
        )
        self._pubsub = self._client.pubsub()
        # Always subscribed to a channel of its own, so the connection always reads.
        await self._pubsub.subscribe(self._control)
        deadline = time.monotonic() + timeout
        while True:
            message = await self._pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.01))
            if message and message["type"] == "subscribe" and message["channel"] == self._control:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("no subscribe confirmation from Redis")

    async def _disconnect(self) -> None:
        self._ready.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._pubsub = self._client = None

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._connect()
                self._ready.set()
                delay = 0.2
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: drop everyone, reconnect
                if self._ready.is_set():
                    log.warning("fan-out connection lost: %s", type(exc).__name__)
                self._fail_all()
            await self._disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        # A ping every few seconds; anything read (its reply, whose shape depends on the
        # protocol version, or any message) proves the connection alive.
        read_timeout = min(1.0, self.PING_SECONDS)
        silence_limit = self.PING_SECONDS * 2 + self.timeout + read_timeout
        last_heard = time.monotonic()
        next_ping = last_heard + self.PING_SECONDS
        while True:
            now = time.monotonic()
            if now >= next_ping:
                await self._pubsub.ping("veche-fanout")
                next_ping = now + self.PING_SECONDS
            message = await self._pubsub.get_message(timeout=read_timeout)
            if message is None:
                if time.monotonic() - last_heard > silence_limit:
                    raise TimeoutError("Redis stopped answering the fan-out connection")
                continue
            last_heard = time.monotonic()
            kind = message["type"]
            if kind == "message":
                self._dispatch(message["channel"], message["data"])
            elif kind == "subscribe":
                channel = self._channels.get(message["channel"])
                if channel is not None:
                    channel.subscribed.set()
            elif kind == "unsubscribe":
                channel = self._channels.get(message["channel"])
                if channel is not None:
                    channel.unsubscribed.set()

    def _fail_all(self) -> None:
        """The connection broke: live delivery has a gap, so every socket must resume."""
        self._ready.clear()
        channels, self._channels = self._channels, {}
        for channel in channels.values():
            channel.active = False
            channel.subscribed.set()  # wake waiting attach() calls; they see the loss
            for socket in list(channel.sockets):
                socket.abort(CLOSE_UNAVAILABLE)
        SUBSCRIBED_ROOMS.set(0)

    def _dispatch(self, name: str, data: str) -> None:
        channel = self._channels.get(name)
        if channel is None or not channel.sockets:
            return
        try:
            body = json.loads(data)
        except ValueError:
            log.warning("undecodable envelope on %s", name)
            return
        frame = body.get("frame")
        text = dumps(frame) if frame is not None else None
        message_id = body.get("message_id")
        close = body.get("close")
        for socket in list(channel.sockets):
            if close is not None and close.get("only") in (None, socket.member_id):
                if close.get("only") is None and text is not None:
                    socket.deliver(Outgoing(text, message_id))
                socket.deliver(Outgoing(close_code=int(close["code"])))
            elif text is not None:
                socket.deliver(Outgoing(text, message_id))
