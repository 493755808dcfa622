"""The media-token process: `uvicorn --factory veche.media_token.main:create_app`."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from veche.common.clients import Nats, create_redis, ensure_stream
from veche.common.consumer import DurableConsumer
from veche.common.livekit import LiveKitRooms
from veche.common.logs import setup_logging
from veche.common.membership import MembershipResolver
from veche.common.rooms_client import RoomsClient
from veche.common.roomstate import RoomState
from veche.common.web import create_app as create_service_app
from veche.media_token.api import router
from veche.media_token.consumers import livekit_sync_consumer
from veche.media_token.service import MediaService
from veche.media_token.settings import MediaSettings

log = logging.getLogger("veche.media")


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings()
    setup_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings)

        async def on_nats(client) -> None:  # type: ignore[no-untyped-def]
            await ensure_stream(client, settings)

        nats = Nats(settings, on_connect=on_nats)
        nats.start()
        membership = MembershipResolver(
            RoomState(redis, settings.participants_ttl_seconds), RoomsClient(settings)
        )
        livekit: LiveKitRooms | None = None
        rooms: RoomsClient | None = None
        consumer: DurableConsumer | None = None
        if settings.livekit_enabled:
            livekit = LiveKitRooms(settings)
            rooms = RoomsClient(settings)
            consumer = livekit_sync_consumer(nats, settings, livekit, rooms)
            consumer.start()
        else:
            log.warning("LIVEKIT_URL is empty: video is off, LiveKit rooms are not managed")
        app.state.redis, app.state.nats, app.state.consumer = redis, nats, consumer
        app.state.service = MediaService(settings, redis, membership, livekit, rooms)
        try:
            yield
        finally:
            if consumer is not None:
                await consumer.stop()
            await nats.close()
            if rooms is not None:
                await rooms.close()
            if livekit is not None:
                await livekit.close()
            await membership.close()
            await redis.aclose()

    def readiness(app: FastAPI):  # type: ignore[no-untyped-def]
        async def redis() -> None:
            await app.state.redis.ping()

        # Neither NATS nor LiveKit is a readiness dependency: a replica without them still
        # answers everything else (a token request while LiveKit is away is a 503 of its own),
        # and the LiveKit side catches up from the stream when they are back.
        return {"redis": redis}

    app = create_service_app(
        service="media-token",
        settings=settings,
        lifespan=lifespan,
        readiness=readiness,
        title="veche media-token",
    )
    app.include_router(router)
    return app
