"""The janitor process: `python -m veche.janitor.main`. A long-running asyncio worker that also
answers /healthz, /readyz and /metrics on JANITOR_PORT (8004).

On SIGTERM uvicorn leaves serve(), and the lifespan's shutdown finishes the sweep in hand and
drains the consumer before the connections close."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from sqlalchemy import text

from veche.common.clients import Nats, create_engine, create_redis, ensure_stream
from veche.common.logs import setup_logging
from veche.common.web import create_app as create_service_app
from veche.janitor.settings import JanitorSettings
from veche.janitor.worker import Janitor


def create_app(settings: JanitorSettings | None = None) -> FastAPI:
    settings = settings or JanitorSettings()
    setup_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        redis = create_redis(settings)

        async def on_nats(client: NatsClient) -> None:
            # The janitor may start before rooms: the stream must exist to bind the consumer.
            await ensure_stream(client, settings)

        nats = Nats(settings, on_connect=on_nats)
        nats.start()
        janitor = Janitor(engine, redis, nats, settings)
        janitor.start()
        app.state.engine, app.state.redis, app.state.nats = engine, redis, nats
        app.state.janitor = janitor
        try:
            yield
        finally:
            await janitor.stop()
            await nats.close()
            await redis.aclose()
            await engine.dispose()

    def readiness(app: FastAPI):  # type: ignore[no-untyped-def]
        async def postgres() -> None:
            async with app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def redis() -> None:
            await app.state.redis.ping()

        async def nats() -> None:
            if not app.state.nats.is_connected:
                raise ConnectionError("NATS is not connected")

        async def consumer() -> None:
            await app.state.janitor.consumer_info()

        return {"postgres": postgres, "redis": redis, "nats": nats, "consumer": consumer}

    return create_service_app(
        service="janitor",
        settings=settings,
        lifespan=lifespan,
        readiness=readiness,
        title="veche janitor",
    )


def main() -> None:
    settings = JanitorSettings()
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.janitor_host,
        port=settings.janitor_port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
