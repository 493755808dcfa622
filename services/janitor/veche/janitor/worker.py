"""The janitor worker: a sweep every JANITOR_SWEEP_INTERVAL_SECONDS (vanished members, expired
empty rooms, retention) beside the durable consumer that cleans Redis on room.ended."""

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from nats.js.api import ConsumerInfo

from veche.common.clients import Nats
from veche.common.consumer import DurableConsumer
from veche.common.events import event_subject
from veche.common.ratelimit import room_limit_key
from veche.common.rooms_client import RoomsClient
from veche.janitor import sweeps
from veche.janitor.cleanup import RoomEndedCleanup
from veche.janitor.metrics import CONSUMER_ACK_PENDING, CONSUMER_LAG, SWEEP_FAILURES, SWEEP_SECONDS
from veche.janitor.settings import JanitorSettings

log = logging.getLogger("veche.janitor")


class Janitor:
    def __init__(self, redis: aioredis.Redis, nats: Nats, settings: JanitorSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.rooms = RoomsClient(settings, timeout=settings.request_timeout_seconds)
        self.nats = nats
        self.consumer = DurableConsumer(
            nats,
            settings,
            durable=settings.durable_name,
            filter_subject=event_subject(settings.nats_subject_prefix, "*", "room.ended"),
            handler=RoomEndedCleanup(
                redis,
                settings.durable_name,
                settings.janitor_cleanup_grace_seconds,
                extra_keys=lambda room_id: [room_limit_key(settings, str(room_id))],
                has_ended=self.rooms.has_ended,
            ),
            ack_wait=settings.janitor_ack_wait_seconds,
            batch=settings.janitor_max_in_flight,
            max_ack_pending=4 * settings.janitor_max_in_flight,
            drain_seconds=settings.janitor_drain_timeout_seconds,
        )
        self._stopping = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.consumer.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="janitor-sweeps")

    async def stop(self) -> None:
        """Finishes the sweep in hand and drains the consumer, both at once."""
        self._stopping.set()
        sweeper = self._sweeper if self._sweeper is not None else asyncio.sleep(0)
        await asyncio.gather(sweeper, self.consumer.stop(), return_exceptions=True)
        await self.rooms.close()

    async def consumer_info(self) -> ConsumerInfo:
        """The shared durable consumer as JetStream sees it (raises while it does not exist)."""
        if self.nats.client is None or not self.nats.is_connected:
            raise ConnectionError("NATS is not connected")
        js = self.nats.client.jetstream()
        return await js.consumer_info(self.settings.nats_stream, self.settings.durable_name)

    async def _measure_consumer(self) -> None:
        try:
            info = await self.consumer_info()
        except Exception as exc:  # noqa: BLE001 - a metric is not worth failing for
            log.debug("consumer info failed: %s", type(exc).__name__)
            return
        CONSUMER_LAG.set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.set(info.num_ack_pending or 0)

    async def _sweep_loop(self) -> None:
        while not self._stopping.is_set():
            await self.sweep()
            await self._measure_consumer()
            # asyncio.timeout, not wait_for: see veche.common.tasks.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.janitor_sweep_interval_seconds):
                    await self._stopping.wait()

    async def sweep(self) -> dict[str, int]:
        """One pass of every sweep; a failing one is logged and the others still run."""
        steps = {
            "timeout": lambda: sweeps.time_out_vanished(self.redis, self.rooms, self.settings),
            "expire": lambda: sweeps.expire_empty_rooms(self.redis, self.rooms, self.settings),
            "retention": lambda: sweeps.delete_old_rooms(self.rooms, self.settings),
        }
        done: dict[str, int] = {}
        with SWEEP_SECONDS.time():
            for name, step in steps.items():
                try:
                    done[name] = await step()
                except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                    SWEEP_FAILURES.labels(name).inc()
                    log.warning("%s sweep failed: %s", name, type(exc).__name__)
        if any(done.values()):
            log.info("sweep", extra={"fields": done})
        return done
