"""Factories of the PostgreSQL engine, the Redis client and the NATS connection.

They are called from each service's lifespan, never at import time."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import nats
import nats.js.errors
import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from veche.common.settings import CommonSettings, PostgresSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("veche.clients")


def create_engine(settings: PostgresSettings) -> "AsyncEngine":
    # Imported here: only rooms and the janitor talk to PostgreSQL (and depend on SQLAlchemy).
    from sqlalchemy.ext.asyncio import create_async_engine

    timeout = settings.dependency_timeout_seconds
    return create_async_engine(
        settings.database_url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=timeout,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"timeout": timeout, "command_timeout": settings.request_timeout_seconds},
    )


def create_redis(settings: CommonSettings) -> aioredis.Redis:
    timeout = settings.dependency_timeout_seconds
    options = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 15,
    }
    if settings.redis_cluster_url:
        from redis.asyncio.cluster import RedisCluster

        return RedisCluster.from_url(settings.redis_cluster_url, **options)  # type: ignore[return-value]
    # A bounded pool whose callers wait (up to the dependency timeout) for a free connection:
    # a burst (the janitor cleaning a hundred rooms at once) queues instead of failing with
    # "too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=timeout, **options
    )
    return aioredis.Redis.from_pool(pool)


def nats_credentials(settings: CommonSettings) -> dict[str, str]:
    """The connect options carrying this service's NATS credentials, when it has any."""
    if settings.nats_creds_file:
        return {"user_credentials": settings.nats_creds_file}
    if settings.nats_user:
        return {"user": settings.nats_user, "password": settings.nats_password or ""}
    return {}


class Nats:
    """A NATS connection that keeps trying in the background, so a service starts (and its
    requests succeed) while NATS is down, and picks NATS up when it comes back."""

    def __init__(
        self,
        settings: CommonSettings,
        on_connect: Callable[[NatsClient], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.client: NatsClient | None = None
        self.connected = asyncio.Event()
        self._on_connect = on_connect
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            try:
                client = await nats.connect(
                    self.settings.nats_url,
                    **nats_credentials(self.settings),
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    name=self.settings.service_name,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                )
            except Exception as exc:  # noqa: BLE001 - any failure to connect means retry
                log.warning("nats connect failed: %s; retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.client = client
            if self._on_connect is not None:
                try:
                    await self._on_connect(client)
                except Exception:  # noqa: BLE001
                    log.exception("nats on_connect hook failed; reconnecting")
                    with contextlib.suppress(Exception):
                        await client.close()
                    self.client = None
                    await asyncio.sleep(delay)
                    continue
            self.connected.set()
            return

    async def _on_error(self, exc: Exception) -> None:
        log.warning("nats: %s", type(exc).__name__)

    async def _on_disconnected(self) -> None:
        log.warning("nats: disconnected; reconnecting in the background")

    async def _on_reconnected(self) -> None:
        log.info("nats: reconnected")

    @property
    def is_connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.drain()


async def ensure_stream(client: NatsClient, settings: CommonSettings) -> None:
    """Creates the JetStream stream of room events when it does not exist. An existing stream
    is kept as it is: an operator may have given it more replicas or other limits, and a
    service (whose NATS user may not update streams) never changes them."""
    js = client.jetstream()
    try:
        await js.stream_info(settings.nats_stream)
        return
    except nats.js.errors.NotFoundError:
        pass
    config = StreamConfig(
        name=settings.nats_stream,
        subjects=[f"{settings.nats_subject_prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * 24 * 3600,
        duplicate_window=600,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != 10058:  # "stream name already in use": another service was quicker
            raise
