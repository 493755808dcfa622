"""Factories of the PostgreSQL engine, the Redis client and the NATS connection.

They are called from each service's lifespan, never at import time."""

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import nats
import nats.js.errors
import redis.asyncio as aioredis
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from veche.common.settings import CommonSettings, PostgresSettings
from veche.common.tasks import stop_tasks

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("veche.clients")


def create_engine(settings: PostgresSettings) -> "AsyncEngine":
    # Imported here: only rooms and the janitor talk to PostgreSQL (and depend on SQLAlchemy).
    from veche.common import pgmetrics, tracing

    # Before the import: tracing wraps create_async_engine itself (nothing while it is off).
    tracing.instrument_sqlalchemy()
    from sqlalchemy.ext.asyncio import create_async_engine

    timeout = settings.dependency_timeout_seconds
    engine = create_async_engine(
        settings.database_url,
        # The pool's connections in use and waiting callers are metrics (veche.common.pgmetrics).
        poolclass=pgmetrics.MeteredPool,
        pool_size=10,
        max_overflow=10,
        pool_timeout=timeout,
        pool_pre_ping=True,
        hide_parameters=True,
        connect_args={"timeout": timeout, "command_timeout": settings.request_timeout_seconds},
    )
    pgmetrics.watch(engine.sync_engine)
    cheaper_pre_ping(engine)
    return engine


# A connection checked in less than this long ago is handed out again without a ping.
FRESH_SECONDS = 1.0


def cheaper_pre_ping(engine: "AsyncEngine") -> None:
    """The pool's pre-ping, made cheaper: rooms' requests are a statement or two, and at a few
    hundred requests a second the ping was a third of their round trips to PostgreSQL.

    - A connection checked back in less than FRESH_SECONDS ago, and that asyncpg does not know
      to be closed, is handed out without a ping: it answered just now, and a server that
      stops or ends a backend closes its socket, which asyncpg sees at once.
    - Any other is pinged in one round trip (`;`) instead of three: SQLAlchemy's asyncpg dialect
      wraps it in BEGIN ... ROLLBACK for pgbouncer's transaction mode, in which the rooms
      service cannot run anyway (the relay holds a session-level advisory lock and LISTENs).

    A connection that is gone is still found and replaced before anyone uses it."""
    from sqlalchemy import event

    dialect = engine.dialect
    ping = dialect.do_ping
    checked_in: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:  # None: it was invalidated
            checked_in[dbapi_connection.driver_connection] = time.monotonic()

    def do_ping(dbapi_connection: Any) -> bool:
        driver = dbapi_connection.driver_connection
        since = checked_in.pop(driver, None)
        if since is not None and time.monotonic() - since < FRESH_SECONDS and not driver.is_closed():
            return True
        # The asyncpg adapter pings with no transaction around in autocommit mode. The mode is
        # the adapter's own flag (set_isolation_level would roll back, a round trip).
        dbapi_connection.autocommit = True
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.autocommit = False

    event.listen(engine.sync_engine.pool, "checkin", on_checkin)
    dialect.do_ping = do_ping  # type: ignore[method-assign]


def redis_retry() -> Retry:
    """One more try, after 50-100 ms, of a call whose connection broke: after a Redis restart
    every pooled connection is stale, and each would otherwise fail one request. Only
    connection errors: a timeout is not retried (it would double the wait on a frozen Redis),
    and writes that may run twice (chat's append) are idempotent by their ids."""
    return Retry(ExponentialBackoff(cap=0.1, base=0.05), 1, supported_errors=(RedisConnectionError,))


def create_redis(settings: CommonSettings) -> aioredis.Redis:
    timeout = settings.dependency_timeout_seconds
    options = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 15,
        "retry": redis_retry(),
    }
    if settings.redis_cluster_seeds:
        return create_redis_cluster(settings.redis_cluster_seeds, **options)  # type: ignore[return-value]
    # A bounded pool whose callers wait (up to the dependency timeout) for a free connection:
    # a burst (the janitor cleaning a hundred rooms at once) queues instead of failing with
    # "too many connections".
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, timeout=timeout, **options
    )
    return aioredis.Redis.from_pool(pool)


def create_redis_cluster(seeds: list[str], **options: Any) -> "RedisCluster":
    """A Redis Cluster client that knows every seed: it loads the slot map from the first one
    that answers, so a dead seed (the node named first, say) stops nobody from starting."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    first = urlsplit(seeds[0])
    nodes = [ClusterNode(urlsplit(url).hostname or "127.0.0.1", urlsplit(url).port or 6379) for url in seeds]
    return RedisCluster(
        startup_nodes=nodes,
        username=unquote(first.username) if first.username else None,
        password=unquote(first.password) if first.password else None,
        ssl=first.scheme == "rediss",
        **options,
    )


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
        # Every seed of a cluster: the client tries them all, and learns the cluster's other
        # servers from the one it reaches.
        url = self.settings.nats_url
        servers = [u.strip() for u in url.split(",") if u.strip()] or [url]
        delay = 0.2
        while True:
            try:
                client = await nats.connect(
                    servers=servers,
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
        # stop_tasks: nats-py's connect loop can swallow a single cancel (veche.common.tasks).
        await stop_tasks([self._task])
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.drain()


async def ensure_stream(client: NatsClient, settings: CommonSettings) -> None:
    """Creates the JetStream stream of room events, with NATS_STREAM_REPLICAS replicas, when it
    does not exist. An existing stream is kept as it is (an operator may have given it other
    limits), with one exception: when it has fewer replicas than NATS_STREAM_REPLICAS, the
    service asks the server to raise them, every other field unchanged. A refusal (a NATS user
    that may not update streams, a cluster with too few servers) is logged as a warning and
    the service carries on with the stream as it is. Replicas are never lowered."""
    js = client.jetstream()
    try:
        info = await js.stream_info(settings.nats_stream)
    except nats.js.errors.NotFoundError:
        pass
    else:
        if (info.config.num_replicas or 1) < settings.nats_stream_replicas:
            await _raise_replicas(client, settings)
        return
    config = StreamConfig(
        name=settings.nats_stream,
        subjects=[f"{settings.nats_subject_prefix}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=7 * 24 * 3600,
        duplicate_window=600,
        num_replicas=max(1, settings.nats_stream_replicas),
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != 10058:  # "stream name already in use": another service was quicker
            raise


async def _raise_replicas(client: NatsClient, settings: CommonSettings) -> None:
    """Raises the replicas of the existing stream to NATS_STREAM_REPLICAS, or logs why not.

    The stream's configuration goes back to the server exactly as the server gave it, as JSON,
    with only num_replicas changed: nats-py's StreamConfig drops the fields it does not know,
    and an update through it would reset those of a newer server."""
    name = settings.nats_stream
    wanted = settings.nats_stream_replicas
    timeout = settings.dependency_timeout_seconds
    try:
        reply = await client.request(f"$JS.API.STREAM.INFO.{name}", b"", timeout=timeout)
        config = _api_result(reply.data)["config"]
        have = int(config.get("num_replicas") or 1)
        if have >= wanted:  # another service raised them meanwhile
            return
        config["num_replicas"] = wanted
        reply = await client.request(
            f"$JS.API.STREAM.UPDATE.{name}", json.dumps(config).encode(), timeout=timeout
        )
        _api_result(reply.data)
    except Exception as exc:  # noqa: BLE001 - the stream works as it is; an operator may raise them
        log.warning(
            "nats stream %s has fewer replicas than NATS_STREAM_REPLICAS=%d and raising them "
            "failed (%s: %s); carrying on with the stream as it is",
            name,
            wanted,
            type(exc).__name__,
            exc,
        )
        return
    log.info("nats stream %s: replicas raised from %d to %d", name, have, wanted)


def _api_result(data: bytes) -> dict[str, Any]:
    """The JSON answer of a JetStream API request; raises on an error answer."""
    result: dict[str, Any] = json.loads(data)
    error = result.get("error")
    if error:
        raise RuntimeError(f"{error.get('description', 'refused')} (err_code {error.get('err_code')})")
    return result
