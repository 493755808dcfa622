"""The chat process: `uvicorn --factory chat.main:create_app`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chat.settings import ChatSettings
from common.clients import Nats, create_redis
from common.logs import setup_logging
from common.web import create_app as create_service_app


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
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

        async def nats() -> None:
            if not app.state.nats.is_connected:
                raise ConnectionError("NATS is not connected")

        return {"redis": redis, "nats": nats}

    return create_service_app(
        service="chat", settings=settings, lifespan=lifespan, readiness=readiness,
        title="veche chat",
    )
