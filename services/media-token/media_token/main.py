"""The media-token process: `uvicorn --factory media_token.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from common.clients import Nats, create_redis
from common.logs import setup_logging
from common.web import create_app as create_service_app
from media_token.settings import MediaSettings


def create_app(settings: MediaSettings | None = None) -> FastAPI:
    settings = settings or MediaSettings()
    setup_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings)
        nats = Nats(settings)
        nats.start()
        app.state.redis, app.state.nats = redis, nats
        try:
            yield
        finally:
            await nats.close()
            await redis.aclose()

    def readiness(app: FastAPI):  # type: ignore[no-untyped-def]
        async def redis() -> None:
            await app.state.redis.ping()

        return {"redis": redis}

    return create_service_app(
        service="media-token", settings=settings, lifespan=lifespan, readiness=readiness,
        title="veche media-token",
    )
