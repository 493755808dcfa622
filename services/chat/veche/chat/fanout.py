"""Fan-out across replicas: the per-process hub that subscribes to the Redis pub/sub channels
of the rooms it has sockets for and hands every envelope (chat.frames) to those sockets.

Envelopes are published by the store's Lua scripts in the same step as the write they
describe, so every replica sees a room's changes in the order they were stored.

With a single Redis there is one pub/sub connection (a link). With a Redis Cluster there is a
link per master that owns a room with local sockets, and the channels are shard channels
(SSUBSCRIBE; the store SPUBLISHes) on servers that have them, Redis 7 and later: a room's
messages then travel only within its own shard, where classic PUBLISH would copy every
message to every node of the cluster. redis-py's ClusterPubSub is not used because it
resubscribes silently after a failover; here a lost link closes its rooms' sockets so that
their clients resume with `after`, and the next socket of such a room finds the slot's new
master."""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import redis.asyncio as aioredis
from prometheus_client import Gauge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from veche.chat.frames import CLOSE_UNAVAILABLE, dumps
from veche.chat.settings import ChatSettings
from veche.chat.wire import Frame
from veche.common import keys
from veche.common.errors import Unavailable
from veche.common.ids import timestamp_ms
from veche.common.tasks import stop_tasks

log = logging.getLogger("veche.chat.fanout")

SUBSCRIBED_ROOMS = Gauge("veche_chat_subscribed_rooms", "Room channels this replica listens to")

# --- the hub -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """One item for a room's sockets, shared by all of them: a frame (encoded once), or a
    close. A message.created frame carries its message's id, as an int for replay stitching
    and as its creation time (the UUIDv7's milliseconds) for the delivery latency."""

    frame: Frame | None = None
    message_id: int | None = None
    created_at: float | None = None
    close_code: int | None = None

    @classmethod
    def of_text(cls, text: str, message_id: str | None = None) -> "Outgoing":
        if message_id is None:
            return cls(Frame(text))
        try:
            parsed = UUID(message_id)
        except ValueError:
            return cls(Frame(text))
        return cls(Frame(text), parsed.int, timestamp_ms(parsed) / 1000)


class LocalSocket(Protocol):
    room_id: UUID
    member_id: str

    def deliver(self, item: Outgoing) -> None: ...

    def abort(self, code: int) -> None: ...


# Redis 7.0 (the first with shard channels), as the scripts' redis.REDIS_VERSION_NUM has it.
SHARDED_SINCE = (7, 0)


@dataclass(eq=False)
class _Channel:
    name: str
    sockets: set[LocalSocket] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    active: bool = False
    # The link the channel is subscribed on (while active or subscribing).
    link: "_Link | None" = None
    # Set by detach while it unsubscribes, so that an unsubscribe the server sends on its own
    # (its slot moved to another node) is told apart from ours.
    leaving: bool = False
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    unsubscribed: asyncio.Event = field(default_factory=asyncio.Event)


class _Link:
    """One pub/sub connection to one Redis server, always subscribed to the replica's own
    control channel so that it always reads, and pinged to prove the server alive. It never
    reconnects by itself: a broken link is the hub's to fail."""

    def __init__(self, hub: "Fanout", address: str, url: str) -> None:
        self.hub = hub
        self.address = address
        self.url = url
        self.sharded = False
        self.dead = False
        self.client: aioredis.Redis | None = None
        self.pubsub: Any = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, want_sharded: bool) -> None:
        timeout = self.hub.timeout
        self.client = aioredis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=f"veche-chat-fanout-{self.hub.replica}",
        )
        if want_sharded:
            async with asyncio.timeout(timeout):
                info = await self.client.info("server")
            version = tuple(int(part) for part in str(info["redis_version"]).split(".")[:2])
            self.sharded = version >= SHARDED_SINCE
        self.pubsub = self.client.pubsub()
        await self.pubsub.subscribe(self.hub.control)
        deadline = time.monotonic() + timeout
        while True:
            message = await self.pubsub.get_message(timeout=max(deadline - time.monotonic(), 0.01))
            if message and message["type"] == "subscribe" and message["channel"] == self.hub.control:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("no subscribe confirmation from Redis")

    async def subscribe(self, name: str) -> None:
        if self.sharded:
            await self.pubsub.ssubscribe(name)
        else:
            await self.pubsub.subscribe(name)

    async def unsubscribe(self, name: str) -> None:
        if self.sharded:
            await self.pubsub.sunsubscribe(name)
        else:
            await self.pubsub.unsubscribe(name)

    async def listen(self) -> None:
        """Reads until the connection fails (raises) or is closed."""
        # A ping every few seconds; anything read (its reply, whose shape depends on the
        # protocol version, or any message) proves the connection alive.
        ping_every = self.hub.PING_SECONDS
        read_timeout = min(1.0, ping_every)
        silence_limit = ping_every * 2 + self.hub.timeout + read_timeout
        last_heard = time.monotonic()
        next_ping = last_heard + ping_every
        while True:
            now = time.monotonic()
            if now >= next_ping:
                await self.pubsub.ping("veche-fanout")
                next_ping = now + ping_every
            message = await self.pubsub.get_message(timeout=read_timeout)
            if message is None:
                if time.monotonic() - last_heard > silence_limit:
                    raise TimeoutError("Redis stopped answering the fan-out connection")
                continue
            last_heard = time.monotonic()
            kind = message["type"]
            if kind in ("message", "smessage"):
                self.hub._dispatch(message["channel"], message["data"])
            elif kind in ("subscribe", "ssubscribe"):
                self.hub._confirmed(self, message["channel"])
            elif kind in ("unsubscribe", "sunsubscribe"):
                self.hub._unsubscribed(self, message["channel"])

    async def close(self) -> None:
        self.dead = True
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        self.pubsub = self.client = None


class Fanout:
    """The process's links and the rooms subscribed on them. A room's channel is subscribed
    while this process holds a socket of that room; `attach` returns once Redis confirmed the
    subscription, so whatever is stored after it returns is also delivered live.

    A link has no silent reconnect: when it breaks, every local socket of its rooms is closed
    (1011) so its client resumes with `after` instead of missing what was published
    meanwhile. A single Redis's link is reopened at once; in a cluster the slot map is
    reloaded, and each room's next socket opens a link to whichever master owns it then."""

    PING_SECONDS = 5.0
    # The single Redis's one link.
    SINGLE = "single"

    def __init__(self, settings: ChatSettings, redis: aioredis.Redis | None = None) -> None:
        self.settings = settings
        self.timeout = settings.dependency_timeout_seconds
        self.replica = uuid.uuid4().hex
        self.control = f"chat:replica:{self.replica}"
        self.seeds = settings.redis_cluster_seeds
        # In a cluster, the service's cluster client: its slot map routes each room's channel.
        self._cluster: Any = redis if self.seeds else None
        self._channels: dict[str, _Channel] = {}
        self._links: dict[str, _Link] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._ready = asyncio.Event()
        self._refresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def start(self) -> None:
        run = self._run_cluster() if self.seeds else self._run_single()
        self._task = asyncio.create_task(run, name="chat-fanout")

    async def stop(self) -> None:
        await stop_tasks([self._task, *self._listeners])
        self._ready.clear()
        for link in list(self._links.values()):
            await link.close()
        self._links.clear()

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
                    link = await self._link_for(name)
                    channel.link = link
                    await link.subscribe(name)
                    async with asyncio.timeout(self.timeout):
                        await channel.subscribed.wait()
                except Exception as exc:
                    self._forget(channel, socket)
                    raise Unavailable("Chat fan-out could not subscribe") from exc
                if link.dead or self._channels.get(name) is not channel:
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
            link = channel.link
            if channel.active and link is not None and not link.dead:
                channel.unsubscribed.clear()
                channel.leaving = True
                # Wait for the confirmation, so a later subscribe of this channel is never
                # confused with this one's answers.
                with contextlib.suppress(Exception):
                    await link.unsubscribe(name)
                    async with asyncio.timeout(self.timeout):
                        await channel.unsubscribed.wait()
            channel.active = False
            if not channel.sockets:
                self._channels.pop(name, None)
            SUBSCRIBED_ROOMS.set(len(self._channels))

    # --- links ---------------------------------------------------------------------------

    async def _link_for(self, name: str) -> _Link:
        if not self.seeds:
            link = self._links.get(self.SINGLE)
            if link is None or link.dead:
                raise ConnectionError("the fan-out link is down")
            return link
        node = self._cluster.get_node_from_key(name)
        address = f"{node.host}:{node.port}"
        async with self._opening.setdefault(address, asyncio.Lock()):
            link = self._links.get(address)
            if link is not None and not link.dead:
                return link
            link = _Link(self, address, self._node_url(node.host, node.port))
            try:
                await link.open(want_sharded=True)
            except Exception:
                await link.close()
                self._refresh.set()  # the slot map may name a master that is gone
                raise
            self._links[address] = link
            task = asyncio.create_task(self._listen(link), name=f"chat-fanout-{address}")
            self._listeners.add(task)
            task.add_done_callback(self._listeners.discard)
            return link

    def _node_url(self, host: str, port: int) -> str:
        """A node's URL with the first seed's scheme and credentials."""
        first = urlsplit(self.seeds[0])
        credentials = first.netloc.rpartition("@")[0]
        netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
        return urlunsplit(first._replace(netloc=netloc))

    async def _listen(self, link: _Link) -> None:
        try:
            await link.listen()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: drop its rooms' sockets
            if not link.dead:
                log.warning("fan-out link to %s lost: %s", link.address, type(exc).__name__)
        self._fail_link(link)
        await link.close()
        self._refresh.set()

    def _fail_link(self, link: _Link) -> None:
        """The link broke: live delivery of its rooms has a gap, so their sockets must resume."""
        link.dead = True
        if self._links.get(link.address) is link:
            self._links.pop(link.address)
        for name, channel in list(self._channels.items()):
            if channel.link is not link:
                continue
            self._channels.pop(name, None)
            channel.active = False
            channel.subscribed.set()  # wake a waiting attach(); it sees the loss
            for socket in list(channel.sockets):
                socket.abort(CLOSE_UNAVAILABLE)
        SUBSCRIBED_ROOMS.set(len(self._channels))

    async def _run_single(self) -> None:
        delay = 0.2
        url = self.settings.redis_url
        while True:
            link = _Link(self, self.SINGLE, url)
            try:
                await link.open(want_sharded=False)
                self._links[self.SINGLE] = link
                self._ready.set()
                delay = 0.2
                await link.listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: drop everyone, reconnect
                if self._ready.is_set():
                    log.warning("fan-out connection lost: %s", type(exc).__name__)
            self._ready.clear()
            self._fail_link(link)
            await link.close()
            await asyncio.sleep(delay)
            # Capped at a second: sockets are refused while the link is down, so a Redis that
            # is back must be noticed quickly.
            delay = min(delay * 2, 1.0)

    async def _run_cluster(self) -> None:
        """Keeps the slot map: loaded at start, reloaded whenever a link fails or cannot be
        opened (at most every half second). Ready while the last load succeeded."""
        loaded = False
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    if loaded:
                        await self._cluster.nodes_manager.initialize()
                    else:
                        await self._cluster.initialize()
                loaded = True
                self._ready.set()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                if self._ready.is_set():
                    log.warning("fan-out cannot load the cluster's slot map: %s", type(exc).__name__)
                self._ready.clear()
                await asyncio.sleep(0.5)
                continue
            self._refresh.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    await self._refresh.wait()
            await asyncio.sleep(0.5)

    # --- called by the links -------------------------------------------------------------

    def _confirmed(self, link: _Link, name: str) -> None:
        channel = self._channels.get(name)
        if channel is not None and channel.link is link:
            channel.subscribed.set()

    def _unsubscribed(self, link: _Link, name: str) -> None:
        channel = self._channels.get(name)
        if channel is None or channel.link is not link:
            return
        if channel.leaving:
            channel.leaving = False
            channel.unsubscribed.set()
            return
        # The server dropped the subscription itself (the slot went to another node): the
        # room's sockets resume, and its next socket subscribes where the slot is now.
        log.info("fan-out: %s moved away from %s", name, link.address)
        self._channels.pop(name, None)
        channel.active = False
        for socket in list(channel.sockets):
            socket.abort(CLOSE_UNAVAILABLE)
        self._refresh.set()
        SUBSCRIBED_ROOMS.set(len(self._channels))

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
        item = Outgoing.of_text(dumps(frame), body.get("message_id")) if frame is not None else None
        close = body.get("close")
        hosts_only = bool(body.get("hosts_only"))
        changed = _participant_of(frame)
        if item is not None and close is None and not hosts_only and changed is None:
            # The common case (a chat message): the same item for every socket.
            for socket in list(channel.sockets):
                socket.deliver(item)
            return
        for socket in list(channel.sockets):
            if changed is not None and changed.get("id") == socket.member_id and "role" in changed:
                # The member's role as of this frame: frames of one room arrive in the order
                # rooms committed them, so a later hosts-only frame sees the role it had then.
                with contextlib.suppress(AttributeError):
                    socket.role = str(changed["role"])  # type: ignore[attr-defined]
            if hosts_only and getattr(socket, "role", None) != "host":
                continue
            if close is not None and close.get("only") in (None, socket.member_id):
                if close.get("only") is None and item is not None:
                    socket.deliver(item)
                socket.deliver(Outgoing(close_code=int(close["code"])))
            elif item is not None:
                socket.deliver(item)


def _participant_of(frame: Any) -> dict[str, Any] | None:
    """The participant of a participant.updated / participant.joined frame, else None."""
    if isinstance(frame, dict) and frame.get("type") in ("participant.updated", "participant.joined"):
        participant = frame.get("participant")
        if isinstance(participant, dict):
            return participant
    return None
