"""The janitor process: `python -m veche.janitor.main`. A long-running asyncio worker that also
answers /healthz, /readyz and /metrics on JANITOR_PORT (8004).

On SIGTERM uvicorn leaves serve(), and the lifespan's shutdown finishes the sweep in hand and
drains the consumer before the connections close."""

import asyncio
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from veche.common.app import Resources, service_app
from veche.common.clients import Nats
from veche.janitor.settings import JanitorSettings
from veche.janitor.worker import Janitor


@dataclass(frozen=True)
class JanitorContext:
    janitor: Janitor
    nats: Nats


def create_app(settings: JanitorSettings | None = None) -> FastAPI:
    settings = settings or JanitorSettings()

    async def setup(app: FastAPI, res: Resources) -> JanitorContext:
        redis = res.redis()
        # The janitor may start before rooms: the stream must exist to bind the consumer.
        nats = res.nats(ready=True)
        janitor = res.worker(Janitor(redis, nats, settings))

        async def consumer() -> None:
            await janitor.consumer_info()

        res.checks["consumer"] = consumer
        return JanitorContext(janitor, nats)

    return service_app(service="janitor", settings=settings, setup=setup, title="veche janitor")


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
