"""The rooms process: `uvicorn --factory veche.rooms.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker

from veche.common.clients import Nats, create_engine, create_redis, ensure_stream
from veche.common.livekit import LiveKitRooms
from veche.common.logs import setup_logging
from veche.common.web import create_app as create_service_app
from veche.rooms.api import internal, router, webhook_receiver
from veche.rooms.cache import RoomCache
from veche.rooms.intruders import IntruderRemoval
from veche.rooms.outbox import OutboxRelay
from veche.rooms.service import RoomsService
from veche.rooms.settings import RoomsSettings


def create_app(settings: RoomsSettings | None = None) -> FastAPI:
    settings = settings or RoomsSettings()
    setup_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        redis = create_redis(settings)

        async def on_nats(client) -> None:  # type: ignore[no-untyped-def]
            await ensure_stream(client, settings)

        nats = Nats(settings, on_connect=on_nats)
        nats.start()
        relay = OutboxRelay(sessions, nats, settings)
        relay.start()
        app.state.engine, app.state.redis, app.state.nats = engine, redis, nats
        app.state.relay = relay
        app.state.service = RoomsService(
            sessions, RoomCache(redis, settings.participants_ttl_seconds), settings, relay.wake
        )
        app.state.webhook_receiver = webhook_receiver(settings.livekit_api_key, settings.livekit_api_secret)
        app.state.intruders = IntruderRemoval(LiveKitRooms(settings) if settings.livekit_enabled else None)
        try:
            yield
        finally:
            await app.state.intruders.close()
            await relay.stop()
            await nats.close()
            await redis.aclose()
            await engine.dispose()

    def readiness(app: FastAPI):  # type: ignore[no-untyped-def]
        async def postgres() -> None:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def redis() -> None:
            await app.state.redis.ping()

        # NATS is not a readiness dependency of rooms: the outbox holds events while it is down.
        return {"postgres": postgres, "redis": redis}

    app = create_service_app(
        service="rooms",
        settings=settings,
        lifespan=lifespan,
        readiness=readiness,
        title="veche rooms",
    )
    app.include_router(router)
    app.include_router(internal)
    return app
