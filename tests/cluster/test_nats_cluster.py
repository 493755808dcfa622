"""The services against a three-node NATS cluster of the test's own (veche.local.nats_cluster):
the stream's replicas follow NATS_STREAM_REPLICAS upwards and never downwards, and the real
event path (the rooms outbox relay publishing, durable consumers handling) carries on when the
node under the relay, the stream's leader too, is killed in the middle of join/leave churn:
every event is in the stream once, in its room's order, and every event is handled, twice only
where an ack was lost with the node (JetStream's at-least-once delivery)."""

import asyncio
import json
import logging
import os
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from tests.rooms.test_relay_order import relay_of
from tests.support import app_client, hdr, new_pid
from veche.common.clients import Nats, ensure_stream
from veche.common.consumer import DurableConsumer
from veche.common.events import RoomEvent
from veche.common.settings import CommonSettings
from veche.local.nats_cluster import NatsCluster
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings

pytestmark = pytest.mark.cluster

RUN_ID = os.environ["VECHE_TEST_RUN_ID"]
ROOMS = 8
MEMBERS_PER_ROOM = 2
CHURN_SECONDS = 6.0
KILL_AFTER_SECONDS = 2.5


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    running = NatsCluster(tmp_path / "nats").start()
    yield running
    running.stop()


def unique_names() -> tuple[str, str]:
    """A stream name and a subject prefix no other test (or run) uses."""
    tag = f"{RUN_ID}{secrets.token_hex(3)}"
    return f"CLUSTER_{tag}".upper(), f"cl{tag}"


def stream_settings(cluster: NatsCluster, replicas: int) -> CommonSettings:
    stream, prefix = unique_names()
    return CommonSettings(
        nats_url=cluster.url, nats_stream=stream, nats_subject_prefix=prefix, nats_stream_replicas=replicas
    )


async def bounded(what: str, seconds: float, check: Any, interval: float = 0.1) -> Any:
    """Polls the async `check` until it returns something truthy; fails naming `what` and the
    last value after `seconds`."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"{what}: not within {seconds:.0f}s (last: {last!r})")


# --- NATS_STREAM_REPLICAS ---------------------------------------------------------------------


async def test_a_new_stream_gets_the_replicas_of_the_setting(cluster: NatsCluster):
    settings = stream_settings(cluster, replicas=3)
    nc = await nats.connect(servers=cluster.urls)
    try:
        await ensure_stream(nc, settings)
        info = await nc.jetstream().stream_info(settings.nats_stream)
        assert info.config.num_replicas == 3
        assert info.config.subjects == [f"{settings.nats_subject_prefix}.>"]
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2, info.cluster
    finally:
        await nc.close()


async def test_an_existing_stream_is_never_shrunk_nor_otherwise_changed(cluster: NatsCluster, caplog):
    nc = await nats.connect(servers=cluster.urls)
    js = nc.jetstream()
    try:
        # An operator's stream: three replicas, limits of its own, a message in it.
        bigger = stream_settings(cluster, replicas=1)
        subjects = [f"{bigger.nats_subject_prefix}.>"]
        await js.add_stream(
            StreamConfig(
                name=bigger.nats_stream, subjects=subjects, num_replicas=3, max_age=3600, duplicate_window=30
            )
        )
        await js.publish(f"{bigger.nats_subject_prefix}.r.e", b"{}")
        before = (await js.stream_info(bigger.nats_stream)).config
        await ensure_stream(nc, bigger)
        after = await js.stream_info(bigger.nats_stream)
        assert after.config.num_replicas == 3
        assert after.config == before
        assert after.state.messages == 1

        # More replicas than the cluster has servers: the service is refused, says so, and
        # carries on with the stream as it is.
        one = stream_settings(cluster, replicas=1)
        await js.add_stream(
            StreamConfig(name=one.nats_stream, subjects=[f"{one.nats_subject_prefix}.>"], max_age=3600)
        )
        before = (await js.stream_info(one.nats_stream)).config
        too_many = one.model_copy(update={"nats_stream_replicas": 5})
        with caplog.at_level(logging.WARNING, logger="veche.clients"):
            await ensure_stream(nc, too_many)
        assert (await js.stream_info(one.nats_stream)).config == before
        assert any("NATS_STREAM_REPLICAS=5" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        await nc.close()


async def test_an_existing_stream_with_fewer_replicas_is_raised_and_nothing_else(cluster: NatsCluster):
    settings = stream_settings(cluster, replicas=3)
    nc = await nats.connect(servers=cluster.urls)
    js = nc.jetstream()
    try:
        await js.add_stream(
            StreamConfig(
                name=settings.nats_stream,
                subjects=[f"{settings.nats_subject_prefix}.>"],
                num_replicas=1,
                max_age=3600,
                duplicate_window=30,
                max_msgs=1000,
            )
        )
        for i in range(5):
            await js.publish(f"{settings.nats_subject_prefix}.r.e", str(i).encode())
        before = (await js.stream_info(settings.nats_stream)).config
        assert before.num_replicas == 1

        await ensure_stream(nc, settings)

        after = await js.stream_info(settings.nats_stream)
        assert after.config.num_replicas == 3
        # Every other field as it was (the server's own metadata aside).
        assert after.config.__dict__ | {"num_replicas": 1, "metadata": None} == before.__dict__ | {
            "metadata": None
        }
        assert after.state.messages == 5

        # The replicas catch up with the leader's messages.
        async def caught_up():
            info = await js.stream_info(settings.nats_stream)
            replicas = (info.cluster.replicas or []) if info.cluster else []
            return len(replicas) == 2 and all(peer.current for peer in replicas)

        await bounded("the new replicas to catch up", 15, caught_up)
    finally:
        await nc.close()


async def test_the_client_knows_every_seed_of_the_cluster(cluster: NatsCluster):
    nats_client = Nats(stream_settings(cluster, replicas=3))
    nats_client.start()
    try:
        await asyncio.wait_for(nats_client.connected.wait(), 10)
        assert nats_client.client is not None
        known = {f"{url.hostname}:{url.port}" for url in nats_client.client.servers}
        assert known == {url.removeprefix("nats://") for url in cluster.urls}
    finally:
        await nats_client.close()


# --- the event path under the loss of a node --------------------------------------------------


class Handled:
    """What one durable's handlers were called with, by every instance sharing it, and the
    events whose acknowledgement an instance could not get confirmed."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, UUID, UUID]] = []  # (instance, room, event)
        self.unconfirmed: Counter[str] = Counter()

    def handler(self, instance: int) -> Any:
        async def handle(event: RoomEvent) -> None:
            self.calls.append((instance, event.room_id, event.event_id))

        return handle

    def event_ids(self) -> set[str]:
        return {str(event_id) for _, _, event_id in self.calls}

    def duplicates(self) -> dict[str, int]:
        counts = Counter(str(event_id) for _, _, event_id in self.calls)
        return {event_id: n for event_id, n in counts.items() if n > 1}

    def unexplained_duplicates(self) -> dict[str, int]:
        """Events handled more often than once plus the number of their lost acks."""
        return {
            event_id: n for event_id, n in self.duplicates().items() if n - 1 > self.unconfirmed[event_id]
        }


class RecordingConsumer(DurableConsumer):
    """The real consumer, noting each event whose ack the server did not confirm (the ack_sync
    raised: the connection or the consumer's leader was lost). JetStream delivers such an
    event again, maybe to the other instance of the durable: the at-least-once delivery the
    handlers' idempotency is there for."""

    def __init__(self, *args: Any, handled: Handled, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled = handled

    async def _ack(self, msg: Msg) -> None:  # type: ignore[override]
        try:
            await DurableConsumer._ack(msg)
        except Exception:
            self.handled.unconfirmed[json.loads(msg.data)["event_id"]] += 1
            raise


async def read_stream(nc: nats.NATS, prefix: str, expected: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Every event in the stream under `prefix`, in stream order (an ordered consumer)."""
    sub = await nc.jetstream().subscribe(f"{prefix}.>", ordered_consumer=True)
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                msg = await sub.next_msg(timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                if len(got) >= expected:
                    break
                continue
            got.append(json.loads(msg.data))
    finally:
        await sub.unsubscribe()
    return got


async def test_events_are_published_and_handled_once_each_while_a_node_is_lost(
    cluster: NatsCluster, own_database: str
):
    stream, prefix = unique_names()
    settings = RoomsSettings(
        database_url=own_database,
        nats_url=cluster.url,
        nats_stream=stream,
        nats_subject_prefix=prefix,
        nats_stream_replicas=3,
        outbox_poll_seconds=0.2,
        rate_limit_join="100000/minute",
    )
    db = await asyncpg.connect(own_database.replace("postgresql+asyncpg", "postgresql"))
    stack = AsyncExitStack()
    shared, other = Handled(), Handled()
    consumers: list[DurableConsumer] = []
    try:
        app = await stack.enter_async_context(app_client(create_app(settings)))
        relay = relay_of(app)

        async def leading() -> bool:
            return relay.leading

        await bounded("the relay to lead", 15, leading)

        # Three consumer processes, each on a connection of its own: two share one durable
        # (each event goes to one of them), the third is a second durable.
        for instance, (handled, durable) in enumerate(
            [(shared, "shared"), (shared, "shared"), (other, "other")]
        ):
            connection = Nats(settings)
            connection.start()
            stack.push_async_callback(connection.close)
            consumer = RecordingConsumer(
                connection,
                settings,
                durable=f"{durable}_{stream}",
                filter_subject=f"{prefix}.>",
                handler=handled.handler(instance),
                handled=handled,
                ack_wait=3,
                retry_max_seconds=1,
            )
            consumer.start()
            consumers.append(consumer)

        hosts = [new_pid() for _ in range(ROOMS)]
        room_ids: list[str] = []
        for i, host in enumerate(hosts):
            created = await app.post("/api/v1/rooms", json={"title": f"Cluster {i}"}, headers=hdr(host))
            assert created.status_code == 201, created.text
            room_ids.append(created.json()["room"]["id"])

        # The node to lose: the one the relay's connection is on, made the stream's leader too.
        nc = relay.nats.client
        assert nc is not None and nc.connected_url is not None
        killed = cluster.index_of_port(nc.connected_url.port or 0)
        victim = cluster.names[killed]
        js = nc.jetstream()
        where = (await js.stream_info(stream)).cluster
        if where is None or where.leader != victim:
            answer = await nc.request(
                f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                json.dumps({"placement": {"preferred": victim}}).encode(),
                timeout=5,
            )
            assert json.loads(answer.data).get("success"), answer.data

            async def victim_leads() -> bool:
                info = await js.stream_info(stream)
                return info.cluster is not None and info.cluster.leader == victim

            await bounded(f"{victim} to lead the stream", 10, victim_leads)

        stop_at = time.monotonic() + CHURN_SECONDS
        failures: list[str] = []

        async def join_and_leave(room_id: str, pid: str) -> bool:
            joined = await app.post(
                f"/api/v1/rooms/{room_id}/join", json={"display_name": "Churner"}, headers=hdr(pid)
            )
            left = await app.post(f"/api/v1/rooms/{room_id}/leave", headers=hdr(pid))
            if joined.status_code not in (200, 201) or left.status_code != 204:
                failures.append(f"{joined.status_code} {joined.text} / {left.status_code} {left.text}")
                return False
            return True

        async def member(room_id: str) -> None:
            pid = new_pid()
            while time.monotonic() < stop_at and await join_and_leave(room_id, pid):
                pass

        seq_at_kill = 0

        async def lose_a_node() -> None:
            nonlocal seq_at_kill
            await asyncio.sleep(KILL_AFTER_SECONDS)
            cluster.kill(killed)
            seq_at_kill = await db.fetchval("SELECT coalesce(max(seq), 0) FROM outbox")

        await asyncio.gather(
            *(member(room_id) for room_id in room_ids for _ in range(MEMBERS_PER_ROOM)), lose_a_node()
        )
        # And one more member through every room: events surely made after the kill, however
        # slow the churn was on a busy machine.
        await asyncio.gather(*(join_and_leave(room_id, new_pid()) for room_id in room_ids))
        assert not failures, failures[:3]

        outbox = await db.fetch("SELECT seq, event_id, subject FROM outbox ORDER BY seq")
        committed = {str(row["event_id"]) for row in outbox}
        after_kill = {str(row["event_id"]) for row in outbox if row["seq"] > seq_at_kill}
        assert len(after_kill) >= 2 * ROOMS, f"only {len(after_kill)} events after the kill"

        async def all_published() -> bool:
            return await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        async def pending() -> int:
            return int(await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))

        try:
            await bounded("the relay to publish the whole outbox", 25, all_published)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {await pending()} of {len(outbox)} still unpublished") from None

        async def all_handled() -> bool:
            return committed <= shared.event_ids() and committed <= other.event_ids()

        try:
            await bounded("both durables to handle every event", 25, all_handled)
        except AssertionError:
            raise AssertionError(
                f"of {len(committed)} events (of which {len(after_kill)} after the kill) the shared "
                f"durable is missing {len(committed - shared.event_ids())}, the other "
                f"{len(committed - other.event_ids())}"
            ) from None
        await asyncio.sleep(ack_settle := 4)  # longer than ack_wait: late redeliveries show up

        # Published exactly once each, in each room's commit order.
        reader = await nats.connect(servers=[url for i, url in enumerate(cluster.urls) if i != killed])
        try:
            in_stream = await read_stream(reader, prefix, expected=len(outbox))
        finally:
            await reader.close()
        stream_ids = [body["event_id"] for body in in_stream]
        assert len(stream_ids) == len(set(stream_ids)), (
            f"{len(stream_ids) - len(set(stream_ids))} events are in the stream twice"
        )
        assert set(stream_ids) == committed
        for room_id in room_ids:
            order = [
                str(row["event_id"]) for row in outbox if row["subject"].startswith(f"{prefix}.{room_id}.")
            ]
            assert [body["event_id"] for body in in_stream if body["room_id"] == room_id] == order, room_id

        # Handled exactly once each, counting handler calls across both instances of the shared
        # durable; the one exception JetStream's at-least-once delivery makes: an event handled
        # whose ack was then lost with the node may be handled once more by the other instance.
        # The second durable (one instance, which remembers what it handled) never repeats one.
        assert not shared.unexplained_duplicates(), (
            f"shared durable handled events twice with their acks confirmed (within {ack_settle}s): "
            f"{shared.unexplained_duplicates()}; lost acks: {dict(shared.unconfirmed)}"
        )
        assert not other.duplicates(), f"second durable handled twice: {other.duplicates()}"
        print(
            f"{len(committed)} events, {len(after_kill)} after killing {victim}; shared durable: "
            f"{len(shared.duplicates())} handled twice, {sum(shared.unconfirmed.values())} acks lost"
        )
        assert shared.event_ids() == committed and other.event_ids() == committed
        assert after_kill <= shared.event_ids() and after_kill <= other.event_ids()
        assert {instance for instance, _, _ in shared.calls} == {0, 1}, "one shared instance did all"

        # The lost node comes back and its replica of the stream catches up.
        await asyncio.to_thread(cluster.restart, killed)

        async def whole_again() -> bool:
            info = await nc.jetstream().stream_info(stream)
            replicas = (info.cluster.replicas or []) if info.cluster else []
            return (
                info.state.messages == len(outbox) and len(replicas) == 2 and all(p.current for p in replicas)
            )

        await bounded(f"{victim} to rejoin and catch up", 15, whole_again)
    finally:
        for consumer in consumers:
            await consumer.stop()
        await stack.aclose()
        await db.close()
