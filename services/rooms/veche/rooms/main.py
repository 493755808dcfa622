"""The rooms process: `uvicorn --factory veche.rooms.main:create_app`."""

import gc

from fastapi import FastAPI
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import async_sessionmaker

from veche.common.app import Resources, service_app
from veche.common.livekit import LiveKitRooms
from veche.rooms.api import internal, router, webhook_receiver
from veche.rooms.cache import RoomCache
from veche.rooms.context import RoomsContext
from veche.rooms.intruders import IntruderRemoval
from veche.rooms.outbox import OutboxRelay
from veche.rooms.schema import SchemaCheck, code_heads, undefined_object_problem
from veche.rooms.service import RoomsService
from veche.rooms.settings import RoomsSettings


def keep_startup_out_of_the_collector(res: Resources) -> None:
    """What the process made to start (its modules, the app, the clients) lives as long as it
    does. Frozen, a full collection no longer walks it: it did, every few seconds under load,
    for 50-150 ms during which no request moved. Unfrozen again when the app stops (tests start
    many apps in one process)."""

    async def unfreeze() -> None:
        gc.unfreeze()

    gc.collect()
    gc.freeze()
    res.on_close(unfreeze)


def create_app(settings: RoomsSettings | None = None) -> FastAPI:
    settings = settings or RoomsSettings()
    # The migrations' head, read once: /readyz fails until the database is at it.
    heads = code_heads()

    async def setup(app: FastAPI, res: Resources) -> RoomsContext:
        engine = res.postgres()
        res.checks["schema"] = SchemaCheck(engine, heads)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        redis = res.redis()
        # NATS is no readiness dependency of rooms: the outbox holds events while it is down.
        nats = res.nats()
        relay = res.worker(OutboxRelay(engine, nats, settings))
        service = RoomsService(
            sessions,
            RoomCache(redis, settings.participants_ttl_seconds),
            settings,
            relay.wake,
            relay_leads=lambda: relay.leading,
        )
        res.on_close(service.close)
        intruders = IntruderRemoval(LiveKitRooms(settings) if settings.livekit_enabled else None)
        res.on_close(intruders.close)
        receiver = webhook_receiver(settings.livekit_api_key, settings.livekit_api_secret)
        keep_startup_out_of_the_collector(res)
        return RoomsContext(service, relay, nats, receiver, intruders)

    app = service_app(service="rooms", settings=settings, setup=setup, title="veche rooms")
    app.include_router(router)
    app.include_router(internal)
    # A missing table (a database not migrated yet) is a 503, not a 500.
    app.add_exception_handler(ProgrammingError, undefined_object_problem)  # type: ignore[arg-type]
    return app
