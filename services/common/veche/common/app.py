"""The skeleton every service process shares: what its lifespan opens (PostgreSQL, Redis,
NATS, workers) is registered on an AsyncExitStack and closed in reverse order, also when the
start fails half-way; the readiness checks come with the resources; and the service's own
objects live in one typed context, `app.state.ctx`, that routes read with `context()`."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import redis.asyncio as aioredis
from fastapi import FastAPI, Request

from veche.common.clients import Nats, create_engine, create_redis, ensure_stream
from veche.common.logs import setup_logging
from veche.common.membership import MembershipResolver
from veche.common.rooms_client import RoomsClient
from veche.common.roomstate import RoomState
from veche.common.settings import CommonSettings, PostgresSettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

ReadinessCheck = Callable[[], Awaitable[Any]]
C = TypeVar("C")


class Worker(Protocol):
    def start(self) -> None: ...
    async def stop(self) -> None: ...


class Resources:
    """The connections and workers of one process, closed in reverse order of opening, and
    the named readiness checks of the dependencies that must answer for it to serve."""

    def __init__(self, settings: CommonSettings, stack: AsyncExitStack) -> None:
        self.settings = settings
        self.stack = stack
        self.checks: dict[str, ReadinessCheck] = {}

    def on_close(self, close: Callable[[], Awaitable[Any]]) -> None:
        self.stack.push_async_callback(close)

    def redis(self, *, ready: bool = True) -> aioredis.Redis:
        client = create_redis(self.settings)
        self.on_close(client.aclose)
        if ready:
            self.checks["redis"] = client.ping
        return client

    def postgres(self, *, ready: bool = True) -> "AsyncEngine":
        from sqlalchemy import text

        assert isinstance(self.settings, PostgresSettings), "this service has no PostgreSQL settings"
        engine = create_engine(self.settings)
        self.on_close(engine.dispose)

        async def select_one() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        if ready:
            self.checks["postgres"] = select_one
        return engine

    def nats(self, *, ready: bool = False) -> Nats:
        """The NATS connection, kept trying in the background (a service starts and serves
        while NATS is down); it makes the event stream when it does not exist."""
        settings = self.settings

        async def on_connect(client: Any) -> None:
            await ensure_stream(client, settings)

        nats = Nats(settings, on_connect=on_connect)
        nats.start()
        self.on_close(nats.close)

        async def connected() -> None:
            if not nats.is_connected:
                raise ConnectionError("NATS is not connected")

        if ready:
            self.checks["nats"] = connected
        return nats

    def membership(self, redis: aioredis.Redis) -> MembershipResolver:
        """Who is an active member of a room: the room state in Redis, and rooms when it is
        missing (chat and media-token)."""
        resolver = MembershipResolver(
            RoomState(redis, self.settings.participants_ttl_seconds), RoomsClient(self.settings)
        )
        self.on_close(resolver.close)
        return resolver

    W = TypeVar("W", bound=Worker)

    def worker(self, worker: W) -> W:
        """Starts a background worker now and stops it on shutdown (before what it uses)."""
        worker.start()
        self.on_close(worker.stop)
        return worker


def context(request: Request, kind: type[C]) -> C:
    """The service's typed context, for a route's dependency."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, kind), f"{type(ctx).__name__} is not {kind.__name__}"
    return ctx


def service_app(
    *,
    service: str,
    settings: CommonSettings,
    setup: Callable[[FastAPI, Resources], Awaitable[Any]],
    title: str | None = None,
) -> FastAPI:
    """A service app (veche.common.web.create_app: middleware, problems, probes) whose lifespan
    runs `setup(app, resources)` and keeps what it returns as `app.state.ctx`."""
    from veche.common import tracing
    from veche.common.web import create_app

    setup_logging(settings.service_name, settings.log_level)
    # Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; before the lifespan, so that the clients
    # it opens are traced too.
    tracing.setup(service, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            resources = Resources(settings, stack)
            app.state.resources = resources
            app.state.ctx = await setup(app, resources)
            yield

    def readiness(app: FastAPI) -> dict[str, ReadinessCheck]:
        resources: Resources | None = getattr(app.state, "resources", None)
        return dict(resources.checks) if resources is not None else {}

    app = create_app(service=service, settings=settings, lifespan=lifespan, readiness=readiness, title=title)
    tracing.instrument_app(app)
    return app
