"""The platform on a Redis Cluster of three masters and three replicas (redis-server processes on
loopback): rooms, two chat replicas, media-token and the janitor behind the gateway, with
REDIS_CLUSTER_URL naming every node. The whole chat and janitor path works there, each room's
fan-out travels on its own shard (SSUBSCRIBE/SPUBLISH), a master killed during a chat stream
costs nothing to clients that resume with `after`, and a dead seed node stops no one."""

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio.cluster import RedisCluster as ClusterClient

from tests.chat.support import ResumingReader, Room, SteadyPoster, chat_socket
from tests.conftest import NATS_STREAM, RUN_ID, create_migrated_database, drop_database
from tests.support import eventually, hdr
from veche.common import keys
from veche.common.clients import create_redis_cluster
from veche.local.redis_cluster import RedisCluster
from veche.local.stack import Process, Stack, free_port, healthy, uvicorn_cmd

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

PRESENCE_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster(Path(tempfile.mkdtemp(prefix="veche-redis-cluster-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def cluster_stack(redis_cluster: RedisCluster) -> Iterator[Stack]:
    name = f"veche_test_{RUN_ID}_redis_cluster"
    database_url = create_migrated_database(name)
    env = {
        "REDIS_CLUSTER_URL": redis_cluster.url,
        "DATABASE_URL": database_url,
        # A stream of its own: nothing of the session's other stacks reaches these processes.
        "NATS_STREAM": f"{NATS_STREAM}_RC",
        "NATS_SUBJECT_PREFIX": f"t{RUN_ID}rc",
        "LIVEKIT_URL": "",  # no video here: this is about Redis
        "LOG_LEVEL": "INFO",
        "PRESENCE_REFRESH_SECONDS": "1",
        "PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT_SECONDS),
        "JANITOR_SWEEP_INTERVAL_SECONDS": "0.5",
        "JANITOR_CLEANUP_GRACE_SECONDS": "1",
        "JANITOR_ACK_WAIT_SECONDS": "3",
        "GATEWAY_RATE_AVERAGE": "1000",
        "GATEWAY_RATE_BURST": "2000",
        # Quick to notice a dead master (a Redis call waits at most this long).
        "DEPENDENCY_TIMEOUT_SECONDS": "1",
    }
    stack = Stack(
        run_dir=Path(tempfile.mkdtemp(prefix="veche-redis-cluster-stack-")),
        env=env,
        gateway_port=free_port(),
        ports={n: free_port() for n in ("rooms", "chat", "media-token", "janitor", "web")},
        replicas={"chat": 2},
        replica_ports={"chat": [free_port()]},
        only={"rooms", "chat", "media-token", "janitor"},
    )
    try:
        stack.start(timeout=90)
        stack.start_supervisor(say=lambda line: print(f"[cluster stack] {line}", flush=True))
        yield stack
    except Exception:
        for log in sorted(stack.run_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    finally:
        stack.stop()
        drop_database(name)


@pytest.fixture
async def gw(cluster_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cluster_stack.url, timeout=15) as client:
        yield client


@pytest.fixture
async def cluster_client(redis_cluster: RedisCluster) -> AsyncIterator[ClusterClient]:
    client = create_redis_cluster(redis_cluster.seeds, decode_responses=True)
    yield client
    await client.aclose()


async def _participants(gw: httpx.AsyncClient, room: Room) -> set[str]:
    response = await gw.get(f"/api/v1/rooms/{room.id}/participants", headers=hdr(room.host.pid))
    assert response.status_code == 200, response.text
    return {p["display_name"] for p in response.json()["participants"]}


def _numsub(cluster: RedisCluster, port: int, command: str, channel: str) -> int:
    reply = cluster.cli(port, "pubsub", command, channel).split()
    return int(reply[1]) if len(reply) > 1 else 0


async def test_chat_and_janitor_work_on_the_cluster_with_one_shard_per_room(
    cluster_stack, gw, cluster_client, redis_cluster
):
    chat_one, chat_two = cluster_stack.service_urls("chat")
    room = await Room.create(gw)
    anna = await room.join("Anna")
    await room.join("Vera")  # never opens a socket: the janitor times her out

    # The host's socket on one chat replica, Anna's on the other: the fan-out crosses them.
    async with (
        chat_socket(chat_one, room.id, room.host) as host_socket,
        chat_socket(chat_two, room.id, anna) as anna_socket,
    ):
        first = await room.post(room.host, "hello from the host")
        assert (await anna_socket.created("hello from the host"))["id"] == first["id"]
        await anna_socket.send(
            {"type": "message.send", "content": "hi over the socket", "client_msg_id": "a1"}
        )
        await host_socket.created("hi over the socket")

        url = f"{room.messages_url}/{first['id']}"
        edited = await gw.put(url, json={"content": "hello, edited"}, headers=hdr(room.host.pid))
        assert edited.status_code == 200, edited.text
        assert (await anna_socket.next("message.updated"))["message"]["content"] == "hello, edited"
        deleted = await gw.delete(url, headers=hdr(room.host.pid))
        assert deleted.status_code == 204
        assert (await anna_socket.next("message.deleted"))["message_id"] == first["id"]

        # One room's frames travel on its own shard: a shard channel of the master that owns
        # the room's slot, with a subscriber from each chat replica, and no classic channel.
        channel = keys.chat_channel(room.id)
        owner = redis_cluster.master_of(channel)
        assert _numsub(redis_cluster, owner, "shardnumsub", channel) == 2
        for node in redis_cluster.alive():
            assert _numsub(redis_cluster, node.port, "numsub", channel) == 0

        # History pages on the cluster, with after and before.
        for n in range(5):
            await room.post(anna, f"page {n}")
        history = await room.history(limit=100)
        user = [m for m in history if m["message_type"] == "user"]
        assert [m["content"] for m in user] == ["hi over the socket"] + [f"page {n}" for n in range(5)]
        after = await room.history(after=user[1]["id"], limit=2)
        assert [m["content"] for m in after] == ["page 1", "page 2"]
        before = await room.history(before=user[3]["id"], limit=2)
        assert [m["content"] for m in before] == ["page 0", "page 1"]

        # The janitor: the member without a socket is timed out; the two with one stay.
        async def vera_gone() -> bool:
            return await _participants(gw, room) == {"Host", "Anna"}

        await eventually(vera_gone, timeout=PRESENCE_TIMEOUT_SECONDS + 15, interval=0.3)
        timed_out = await room.wait_for_system("Vera left")
        assert timed_out["system"] == {"event": "timed_out", "display_name": "Vera"}
        await room.leave(anna)
        assert (await room.wait_for_system("Anna left"))["system"]["event"] == "left"

    # The end: sockets are told, and the janitor removes every key of the room from the cluster.
    await room.end()

    async def keys_gone() -> bool:
        return not [key for key in keys.room_key_names(room.id) if await cluster_client.exists(key)]

    await eventually(keys_gone, timeout=20, interval=0.3)
    gone = await gw.get(room.messages_url, headers=hdr(room.host.pid))
    assert gone.status_code in (404, 409), gone.text


async def test_a_master_failover_during_a_chat_stream_loses_and_duplicates_nothing(
    cluster_stack, gw, redis_cluster
):
    room = await Room.create(gw)
    members = [room.host] + [await room.join(f"M{i}", settle=False) for i in range(5)]
    stop_reading, stop_posting = asyncio.Event(), asyncio.Event()
    readers = [ResumingReader(cluster_stack.url, room, member) for member in members]
    reading = await ResumingReader.start(readers, stop_reading)
    owner = redis_cluster.master_of(keys.chat_channel(room.id))
    async with httpx.AsyncClient(base_url=cluster_stack.url, timeout=15) as client:
        posters = [SteadyPoster(client, room, member, 0.1) for member in members]
        posting = [asyncio.create_task(poster.run(stop_posting)) for poster in posters]
        try:
            await asyncio.sleep(2)
            redis_cluster.kill(owner)
            killed_at = time.monotonic()

            async def failed_over() -> bool:
                try:
                    now = await asyncio.to_thread(redis_cluster.master_of, keys.chat_channel(room.id))
                except RuntimeError as exc:  # the slot has no live master yet
                    raise AssertionError(f"{exc}: {redis_cluster.describe()}") from exc
                assert now != owner, f"{owner} still owns the room: {redis_cluster.describe()}"
                return True

            await eventually(failed_over, timeout=20, interval=0.1)
            took = time.monotonic() - killed_at
            await asyncio.sleep(3)  # the stream goes on on the new master
        finally:
            stop_posting.set()
            await asyncio.gather(*posting)
    accepted = [id_ for poster in posters for id_ in poster.accepted]
    after_failover = [
        ok for poster in posters for ok in poster.outcomes(killed_at + took + 1, time.monotonic())
    ]

    async def everyone_has_everything() -> bool:
        return all(set(accepted) <= set(reader.seen) for reader in readers)

    try:
        await eventually(everyone_has_everything, timeout=30, interval=0.2)
    except AssertionError:
        stored = {m["id"] for m in await _whole_history(room)}
        missing = [sorted(set(accepted) - set(r.seen)) for r in readers]
        raise AssertionError(
            f"readers miss {[len(m) for m in missing]} accepted messages "
            f"(resumes {[r.resumes for r in readers]}); in the history: "
            f"{[len(set(m) & stored) for m in missing]}; failover took {took:.1f} s; "
            f"accepted but not stored: {sorted(set(accepted) - stored)}; missing: {missing}; "
            f"seen but not stored: {[sorted(set(r.seen) - stored) for r in readers]}"
        ) from None
    finally:
        stop_reading.set()
        await asyncio.gather(*reading)

    history = await _whole_history(room)
    stored = [m["id"] for m in history if m["message_type"] == "user"]
    assert len(stored) == len(set(stored)), "a message is stored twice"
    assert set(accepted) <= set(stored), "an accepted message is gone"
    for reader in readers:
        assert len(reader.seen) == len(set(reader.seen)), "a message arrived twice"
        assert reader.seen == sorted(reader.seen), "messages out of order"
        assert set(reader.seen) == set(stored), "a reader's view differs from the history"
    assert any(reader.resumes for reader in readers), "no socket noticed the lost master"
    assert after_failover and all(after_failover), "posts failed after the failover was over"

    redis_cluster.restart(owner)
    redis_cluster.wait_healthy(timeout=30)


async def test_a_dead_seed_node_stops_neither_running_nor_new_processes(cluster_stack, gw, redis_cluster):
    seed = redis_cluster.nodes[0].port  # the node named first in REDIS_CLUSTER_URL
    redis_cluster.kill(seed)
    try:
        await asyncio.to_thread(_wait_for_cluster_ok, redis_cluster)
        # A chat process started now, with the dead node first among its seeds, starts and serves.
        port = free_port()
        fresh = Process(
            "chat-fresh",
            uvicorn_cmd("veche.chat.main:create_app", port),
            port,
            {
                **os.environ,
                **cluster_stack.env,
                "ROOMS_INTERNAL_URL": ",".join(cluster_stack.service_urls("rooms")),
            },
        )
        cluster_stack.start_process(fresh)
        try:
            await _ready(f"http://127.0.0.1:{port}")
            room = await Room.create(gw)
            anna = await room.join("Anna")
            async with (
                chat_socket(f"http://127.0.0.1:{port}", room.id, room.host) as fresh_socket,
                chat_socket(cluster_stack.service_urls("chat")[0], room.id, anna) as old_socket,
            ):
                await room.post(anna, "through a cluster without its first seed")
                await fresh_socket.created("through a cluster without its first seed")
                await old_socket.created("through a cluster without its first seed")
        finally:
            cluster_stack.stop_process(fresh)
    finally:
        redis_cluster.restart(seed)
        redis_cluster.wait_healthy(timeout=30)


def _wait_for_cluster_ok(cluster: RedisCluster) -> None:
    """Until the live nodes agree the cluster is whole again (a replica took the dead master's
    slots, when the seed was a master)."""
    deadline = time.monotonic() + 20
    while not all("cluster_state:ok" in cluster.cli(n.port, "cluster", "info") for n in cluster.alive()):
        assert time.monotonic() < deadline, "the cluster did not recover from losing a node"
        time.sleep(0.2)
    time.sleep(1.0)  # every node has marked the dead one failed


async def _ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(f"{url}/readyz"):
        assert time.monotonic() < deadline, f"{url} not ready in {timeout:.0f} s"
        await asyncio.sleep(0.2)


async def _whole_history(room: Room) -> list[dict[str, Any]]:
    """Every message, oldest first: the newest page, then older ones with `before`."""
    messages = await room.history(limit=100)
    while True:
        older = await room.history(limit=100, before=messages[0]["id"]) if messages else []
        if not older:
            return messages
        messages = older + messages
