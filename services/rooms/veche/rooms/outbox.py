"""The outbox relay: publishes committed events to JetStream, once each, in commit order.

One relay publishes at a time, whatever the number of rooms replicas: the one holding a
session-level advisory lock (RELAY_LOCK) in PostgreSQL. It reads and marks the outbox on the
very connection that holds the lock, so a relay whose connection is gone can mark nothing,
and the lock is free for a standby the moment its backend ends. Standbys try for the lock every
OUTBOX_POLL_SECONDS. A relay whose NATS connection is down hands the lock over, so a replica
that can publish takes its place.

Why one leased relay and not rows claimed with FOR UPDATE SKIP LOCKED by every replica: two
relays publishing two batches at once put a room's later event before its earlier one. Per-room
order is the contract (a member's `participant.left` after its `participant.joined`), and one
relay publishes a few thousand events a second, far above what joins and leaves produce.

Commits of one room are serialized by the room's row lock, so a room's outbox `seq` order is
its commit order; the relay publishes in `seq` order. A commit on any replica wakes the leader
at once: an AFTER INSERT trigger on the outbox sends NOTIFY on `veche_outbox`, which PostgreSQL
delivers at commit, and the leader LISTENs on its lock connection. The Nats-Msg-Id header
(= event_id) lets JetStream drop a re-publish after a crash."""

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

from nats.js.client import JetStreamContext
from prometheus_client import Counter, Gauge
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from veche.common import tracing
from veche.common.clients import Nats
from veche.common.tasks import stop_tasks
from veche.common.timefmt import utcnow
from veche.rooms import repository as repo
from veche.rooms.models import OutboxEvent
from veche.rooms.settings import RoomsSettings

log = logging.getLogger("veche.rooms.outbox")

PUBLISHED = Counter("veche_outbox_published_total", "Events published to JetStream")
PUBLISH_FAILURES = Counter("veche_outbox_publish_failures_total", "Failed publish attempts")
PENDING = Gauge("veche_outbox_pending", "Events claimed but not yet published in the last pass")
LEADING = Gauge("veche_outbox_leading", "1 while this process is the one relay that publishes")
OLDEST_UNPUBLISHED = Gauge(
    "veche_outbox_oldest_unpublished_seconds",
    "Age of the oldest event in the outbox not yet published (0 when none); every rooms process "
    "measures it, leading or not",
)

PUBLISHED_RETENTION = timedelta(days=1)
# The advisory lock whose holder is the relay (one per database).
RELAY_LOCK = 0x5645434845
# The channel the outbox trigger notifies on commit (migration 0002).
NOTIFY_CHANNEL = "veche_outbox"


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, nats: Nats, settings: RoomsSettings) -> None:
        self.engine = engine
        self.nats = nats
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._backlog_task: asyncio.Task[None] | None = None
        self._passes = 0
        self._stopping = False
        self.leading = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")
        self._backlog_task = asyncio.create_task(self._measure_backlog(), name="outbox-backlog")

    async def stop(self) -> None:
        self._stopping = True
        await stop_tasks([self._task, self._backlog_task])

    def _nats_up(self) -> bool:
        return self.nats.client is not None and self.nats.client.is_connected

    async def _wait(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # arrives as the wake-up does, and the relay would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        self._wake.clear()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self._nats_up():
                    await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                PUBLISH_FAILURES.inc()
                log.warning("outbox relay: %s", type(exc).__name__)
            # Standing by: another replica leads, or PostgreSQL or NATS is away.
            await asyncio.sleep(self.settings.outbox_poll_seconds)

    async def _measure_backlog(self) -> None:
        """Every few seconds, on every replica: the age of the oldest unpublished event (through
        the partial index on unpublished rows). It grows while NATS is away or no relay leads;
        while PostgreSQL is away the gauge keeps its last value."""
        interval = max(self.settings.outbox_poll_seconds * 5, 1.0)
        query = text(
            "SELECT COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - (SELECT created_at FROM outbox"
            " WHERE published_at IS NULL ORDER BY seq LIMIT 1)), 0)"
        )
        while not self._stopping:
            try:
                async with self.engine.connect() as conn:
                    age = await conn.scalar(query)
                OLDEST_UNPUBLISHED.set(max(float(age or 0), 0.0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a metric is not worth failing for
                log.debug("outbox backlog not measured: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    async def _lead(self) -> None:
        """Takes the relay lock if it is free and publishes until the lock, PostgreSQL or NATS
        is lost; returns at once when another replica holds it."""
        async with self.engine.connect() as conn:
            try:
                got = await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": RELAY_LOCK})
                await conn.commit()
                if got:
                    await self._publish_while_leading(conn)
            finally:
                # Never back to the pool: a pooled connection would keep the session lock (and
                # the LISTEN) for whatever borrows it next. Closing it frees both.
                self._set_leading(False)
                await conn.invalidate()

    async def _publish_while_leading(self, conn: AsyncConnection) -> None:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.add_listener(NOTIFY_CHANNEL, self._notified)
        self._set_leading(True)
        sessions = async_sessionmaker(bind=conn, expire_on_commit=False)
        while not self._stopping:
            while await self.publish_batch(sessions) >= self.settings.outbox_batch:
                pass
            self._passes += 1
            if self._passes % 600 == 0:
                await self._prune(sessions)
            if not self._nats_up():
                log.warning("outbox relay: NATS is down, handing the relay over")
                return
            await self._wait(self.settings.outbox_poll_seconds)

    def _notified(self, *_: object) -> None:
        self._wake.set()

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            log.info("outbox relay: %s", "leading" if leading else "standing by")
        self.leading = leading
        LEADING.set(1 if leading else 0)

    async def publish_batch(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Publishes one batch of pending events; returns how many it published."""
        client = self.nats.client
        if client is None or not client.is_connected:
            return 0
        js = client.jetstream()
        published = 0
        failure: Exception | None = None
        async with sessions() as session, session.begin():
            events = await repo.unpublished_events(session, self.settings.outbox_batch)
            PENDING.set(len(events))
            now = utcnow()
            for event in events:
                try:
                    await self._publish(js, event)
                except Exception as exc:  # noqa: BLE001
                    # What went out stays marked (the commit below keeps it); the rest stays
                    # pending, in order, for the next pass.
                    failure = exc
                    break
                event.published_at = now
                published += 1
        PUBLISHED.inc(published)
        if failure is not None:
            raise failure
        return published

    @staticmethod
    async def _publish(js: JetStreamContext, event: OutboxEvent) -> None:
        """One event, with the trace context of the request that wrote it (`traceparent`, from
        a PRODUCER span while tracing is on) beside its Nats-Msg-Id."""
        attributes = {
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": event.subject,
            "messaging.message.id": str(event.event_id),
        }
        with tracing.producer_span(
            f"{event.payload.get('type', 'event')} publish", event.trace_context, attributes
        ) as trace_headers:
            await js.publish(
                event.subject,
                json.dumps(event.payload, ensure_ascii=False).encode(),
                timeout=2,
                headers={**trace_headers, "Nats-Msg-Id": str(event.event_id)},
            )

    async def _prune(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session, session.begin():
            cutoff = utcnow() - PUBLISHED_RETENTION
            await session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.published_at.is_not(None), OutboxEvent.published_at < cutoff
                )
            )
