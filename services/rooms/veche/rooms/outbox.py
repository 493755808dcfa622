"""The outbox relay: publishes committed events to JetStream, once, in commit order.

Rows are claimed with FOR UPDATE SKIP LOCKED, so several rooms replicas share the outbox; the
Nats-Msg-Id header (= event_id) lets JetStream drop a re-publish after a crash."""

import asyncio
import contextlib
import json
import logging
from datetime import timedelta

from prometheus_client import Counter, Gauge
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from veche.common.clients import Nats
from veche.common.timefmt import utcnow
from veche.rooms import repository as repo
from veche.rooms.models import OutboxEvent
from veche.rooms.settings import RoomsSettings

log = logging.getLogger("veche.rooms.outbox")

PUBLISHED = Counter("veche_outbox_published_total", "Events published to JetStream")
PUBLISH_FAILURES = Counter("veche_outbox_publish_failures_total", "Failed publish attempts")
PENDING = Gauge("veche_outbox_pending", "Events claimed but not yet published in the last pass")

PUBLISHED_RETENTION = timedelta(days=1)


class OutboxRelay:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], nats: Nats, settings: RoomsSettings
    ) -> None:
        self.sessions = sessions
        self.nats = nats
        self.settings = settings
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._passes = 0
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopping:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wake-up does, and the relay would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.outbox_poll_seconds):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while await self.publish_batch() >= self.settings.outbox_batch:
                    pass
                self._passes += 1
                if self._passes % 600 == 0:
                    await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any outage
                PUBLISH_FAILURES.inc()
                log.warning("outbox pass failed: %s", type(exc).__name__)
                await asyncio.sleep(0.5)

    async def publish_batch(self) -> int:
        """Publishes one batch of pending events; returns how many it published."""
        client = self.nats.client
        if client is None or not client.is_connected:
            return 0
        js = client.jetstream()
        published = 0
        failure: Exception | None = None
        async with self.sessions() as session, session.begin():
            events = await repo.unpublished_events(session, self.settings.outbox_batch)
            PENDING.set(len(events))
            now = utcnow()
            for event in events:
                try:
                    await js.publish(
                        event.subject,
                        json.dumps(event.payload, ensure_ascii=False).encode(),
                        timeout=2,
                        headers={"Nats-Msg-Id": str(event.event_id)},
                    )
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

    async def _prune(self) -> None:
        async with self.sessions() as session, session.begin():
            cutoff = utcnow() - PUBLISHED_RETENTION
            await session.execute(
                delete(OutboxEvent).where(
                    OutboxEvent.published_at.is_not(None), OutboxEvent.published_at < cutoff
                )
            )
