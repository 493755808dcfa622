"""A durable JetStream pull consumer of ROOMS events, shared by the services that react to them.

Several replicas may share one durable: each message goes to one of them. Delivery is at least
once, so handlers must be idempotent by `event_id`. A handler that raises gets its message
redelivered with a growing delay (`nak(delay=…)`), so an outage of whatever the handler calls
delays the work but never loses it. Events of one room are handled in order within a batch;
different rooms run concurrently."""

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from uuid import UUID

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from veche.common import tracing
from veche.common.clients import Nats
from veche.common.events import RoomEvent
from veche.common.settings import CommonSettings
from veche.common.tasks import stop_tasks

log = logging.getLogger("veche.consumer")

PROCESSED = Counter("veche_consumer_processed_total", "Events handled and acknowledged", ["durable"])
FAILURES = Counter(
    "veche_consumer_failures_total",
    "Handler failures (each one is redelivered later) and unreadable messages",
    ["durable"],
)
LAG = Gauge("veche_consumer_lag", "Events in the stream not yet delivered to the consumer", ["durable"])

# A handler returns None when it is done with the event, or an awaitable of the rest of its
# work (a second pass after a grace period, say): the consumer goes on with other events and
# acknowledges this one when that finishes (or redelivers it when it fails); stop() waits
# for every such rest, within drain_seconds.
EventHandler = Callable[[RoomEvent], Awaitable[Awaitable[None] | None]]


# Redeliveries of events this process already handled (an ack lost on the way) are acked
# without calling the handler again; the handler's own idempotency covers other replicas.
_REMEMBERED_EVENTS = 10_000
# How long a fetch for the rest of a batch may wait once one message is in hand.
_BACKLOG_FETCH_SECONDS = 0.05


def retry_delay(deliveries: int, base: float, cap: float) -> float:
    """Seconds before the next delivery of a message that failed `deliveries` times."""
    return float(min(cap, base * 2 ** max(0, deliveries - 1)))


class DurableConsumer:
    def __init__(
        self,
        nats: Nats,
        settings: CommonSettings,
        durable: str,
        filter_subject: str,
        handler: EventHandler,
        *,
        ack_wait: float = 30.0,
        batch: int = 20,
        max_ack_pending: int = 256,
        retry_base_seconds: float = 0.5,
        retry_max_seconds: float = 10.0,
        fetch_timeout: float = 1.0,
        lag_interval: float = 5.0,
        drain_seconds: float = 10.0,
    ) -> None:
        self.nats = nats
        self.settings = settings
        self.durable = durable
        self.filter_subject = filter_subject
        self.handler = handler
        self.ack_wait = ack_wait
        self.batch = batch
        self.max_ack_pending = max_ack_pending
        self.retry_base_seconds = retry_base_seconds
        self.retry_max_seconds = retry_max_seconds
        self.fetch_timeout = fetch_timeout
        self.lag_interval = lag_interval
        self.drain_seconds = drain_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._handled: OrderedDict[UUID, None] = OrderedDict()
        self._rests: set[asyncio.Task[None]] = set()
        self._processed = PROCESSED.labels(durable)
        self._failures = FAILURES.labels(durable)
        self._lag = LAG.labels(durable)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.durable}")

    async def stop(self) -> None:
        """Drains: the batch in hand is finished and acknowledged, then the subscription ends.
        Messages fetched but not started are handed back at once for another replica."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            async with asyncio.timeout(self.drain_seconds):
                await asyncio.shield(self._task)
                # The rests of events in hand (their handlers' later work), then their acks.
                while self._rests:
                    await asyncio.gather(*list(self._rests), return_exceptions=True)
        except TimeoutError:
            log.warning("consumer %s did not drain in %.0fs; cancelling", self.durable, self.drain_seconds)
            await stop_tasks([self._task, *self._rests])

    # --- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            if not await self._wait_connected():
                return
            try:
                subscription = await self._subscribe()
            except Exception as exc:  # noqa: BLE001 - the stream may not exist yet; retry
                log.warning("consumer %s cannot subscribe: %s; retrying", self.durable, type(exc).__name__)
                await self._pause(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            try:
                await self._pull(subscription)
            except Exception as exc:  # noqa: BLE001 - a lost connection: subscribe again
                log.warning("consumer %s interrupted: %s; resubscribing", self.durable, type(exc).__name__)
                await self._pause(delay)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()

    async def _wait_connected(self) -> bool:
        while not self.nats.is_connected:
            if await self._pause(0.2):
                return False
        return True

    async def _pause(self, seconds: float) -> bool:
        """Sleeps, waking early on stop; True when stopping."""
        # asyncio.timeout, not wait_for: see veche.common.tasks.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return self._stopping.is_set()

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        assert self.nats.client is not None
        js = self.nats.client.jetstream()
        config = ConsumerConfig(
            durable_name=self.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.filter_subject,
        )
        return await js.pull_subscribe(
            self.filter_subject,
            durable=self.durable,
            stream=self.settings.nats_stream,
            config=config,
        )

    async def _pull(self, subscription: JetStreamContext.PullSubscription) -> None:
        next_lag_check = 0.0
        while not self._stopping.is_set():
            if time.monotonic() >= next_lag_check:
                next_lag_check = time.monotonic() + self.lag_interval
                await self._measure_lag(subscription)
            messages = await self._next_batch(subscription)
            if messages:
                await self._process(messages)

    async def _next_batch(self, subscription: JetStreamContext.PullSubscription) -> list[Msg]:
        """Waits for one message, then takes whatever else is already there, up to `batch`.
        (A single fetch of `batch` would hold a lone new event back until its window ends.)"""
        try:
            messages = await subscription.fetch(1, timeout=self.fetch_timeout)
        except (NatsTimeoutError, TimeoutError):
            return []
        if self.batch > 1:
            with contextlib.suppress(NatsTimeoutError, TimeoutError):
                messages += await subscription.fetch(self.batch - 1, timeout=_BACKLOG_FETCH_SECONDS)
        return messages

    async def _measure_lag(self, subscription: JetStreamContext.PullSubscription) -> None:
        try:
            info = await subscription.consumer_info()
        except Exception as exc:  # noqa: BLE001 - a metric is not worth failing for
            log.debug("consumer %s info failed: %s", self.durable, type(exc).__name__)
            return
        self._lag.set(info.num_pending or 0)

    # --- one batch -----------------------------------------------------------------------

    async def _process(self, messages: list[Msg]) -> None:
        by_room: dict[UUID, list[tuple[Msg, RoomEvent]]] = {}
        for msg in messages:
            try:
                event = RoomEvent.from_json(msg.data)
            except ValidationError:
                self._failures.inc()
                log.warning("consumer %s: unreadable message on %s; dropped", self.durable, msg.subject)
                await msg.term()
                continue
            by_room.setdefault(event.room_id, []).append((msg, event))
        results = await asyncio.gather(
            *(self._process_room(items) for items in by_room.values()), return_exceptions=True
        )
        # An ack that could not be sent means the connection is gone: subscribe again (the
        # unacknowledged messages come back after ack_wait).
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _process_room(self, items: list[tuple[Msg, RoomEvent]]) -> None:
        for msg, event in items:
            if self._stopping.is_set():
                await msg.nak()
                continue
            await self._handle(msg, event)

    async def _handle(self, msg: Msg, event: RoomEvent) -> None:
        if event.event_id in self._handled:
            await self._ack(msg)
            return
        attributes = {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": msg.subject,
            "messaging.consumer.group.name": self.durable,
            "messaging.message.id": str(event.event_id),
        }
        try:
            # A CONSUMER span, child of the publish (and so of the request that wrote the
            # event), when tracing is on; nothing otherwise.
            with tracing.consumer_span(f"{event.type} process", msg.headers, attributes):
                async with asyncio.timeout(self.ack_wait * 0.8):
                    rest = await self.handler(event)
        except Exception as exc:  # noqa: BLE001 - any failure means: try again later
            await self._failed(msg, event, exc)
            return
        if rest is not None:
            task = asyncio.create_task(self._finish(msg, event, rest), name=f"consumer-{self.durable}-rest")
            self._rests.add(task)
            task.add_done_callback(self._rests.discard)
            return
        await self._done(msg, event)

    async def _finish(self, msg: Msg, event: RoomEvent, rest: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self.ack_wait * 0.8):
                await rest
        except Exception as exc:  # noqa: BLE001 - redelivered later, like any failure
            with contextlib.suppress(Exception):
                await self._failed(msg, event, exc)
            return
        with contextlib.suppress(Exception):  # a lost ack: redelivered, and handled idempotently
            await self._done(msg, event)

    async def _done(self, msg: Msg, event: RoomEvent) -> None:
        self._remember(event.event_id)
        await self._ack(msg)
        self._processed.inc()

    async def _failed(self, msg: Msg, event: RoomEvent, exc: Exception) -> None:
        self._failures.inc()
        deliveries = msg.metadata.num_delivered
        delay = retry_delay(deliveries, self.retry_base_seconds, self.retry_max_seconds)
        # The first failure and every tenth: a long outage should not flood the log.
        level = logging.WARNING if deliveries == 1 or deliveries % 10 == 0 else logging.DEBUG
        log.log(
            level,
            "consumer %s: %s of room %s failed (%s, delivery %d); retrying in %.1fs",
            self.durable,
            event.type,
            event.room_id,
            type(exc).__name__,
            deliveries,
            delay,
        )
        await msg.nak(delay=delay)

    @staticmethod
    async def _ack(msg: Msg) -> None:
        # Confirmed by the server, so "handled" means acknowledged when stop() returns; a lost
        # ack raises here and the pull loop subscribes again.
        await msg.ack_sync(timeout=5)

    def _remember(self, event_id: UUID) -> None:
        self._handled[event_id] = None
        if len(self._handled) > _REMEMBERED_EVENTS:
            self._handled.popitem(last=False)
