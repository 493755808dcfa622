"""The media-token process: `uvicorn --factory veche.media_token.main:create_app`."""

import logging

from fastapi import FastAPI

from veche.common.app import Resources, service_app
from veche.common.consumer import DurableConsumer
from veche.common.livekit import LiveKitRooms
from veche.media_token.api import router
from veche.media_token.consumers import livekit_sync_consumer
from veche.media_token.context import MediaContext
from veche.media_token.service import MediaService
from veche.media_token.settings import MediaSettings

log = logging.getLogger("veche.media")


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings()

    async def setup(app: FastAPI, res: Resources) -> MediaContext:
        # Neither NATS nor LiveKit is a readiness dependency: a replica without them still
        # answers everything else (a token request while LiveKit is away is a 503 of its own),
        # and the LiveKit side catches up from the stream when they are back.
        redis = res.redis()
        membership = res.membership(redis)
        livekit: LiveKitRooms | None = None
        if settings.livekit_enabled:
            livekit = LiveKitRooms(settings)
            res.on_close(livekit.close)
        nats = res.nats()
        consumer: DurableConsumer | None = None
        if livekit is not None:
            consumer = res.worker(livekit_sync_consumer(nats, settings, livekit, membership.rooms))
        else:
            log.warning("LIVEKIT_URL is empty: video is off, LiveKit rooms are not managed")
        service = MediaService(settings, membership, livekit)
        return MediaContext(service, redis, nats, consumer)

    app = service_app(service="media-token", settings=settings, setup=setup, title="veche media-token")
    app.include_router(router)
    return app
