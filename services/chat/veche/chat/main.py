"""The chat process: `uvicorn --factory veche.chat.main:create_app`.

On SIGTERM uvicorn closes every open socket with 1012 (service restart) before the lifespan
ends, so clients reconnect with `after` to another replica; the lifespan then stops pulling
events (unacked ones go to the other replicas) and closes its connections."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from veche.chat import api, ws
from veche.chat.consumers import room_events_consumer
from veche.chat.fanout import Fanout
from veche.chat.frames import CLOSE_RESTARTING
from veche.chat.presence import PresenceKeeper
from veche.chat.service import ChatService
from veche.chat.settings import ChatSettings
from veche.chat.store import ChatStore
from veche.common.clients import Nats, create_redis, ensure_stream
from veche.common.logs import setup_logging
from veche.common.membership import MembershipResolver
from veche.common.rooms_client import RoomsClient
from veche.common.roomstate import RoomState
from veche.common.web import create_app as create_service_app


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    setup_logging(settings.service_name, settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = create_redis(settings)
        store = ChatStore(redis, settings)
        membership = MembershipResolver(
            RoomState(redis, settings.participants_ttl_seconds), RoomsClient(settings)
        )
        service = ChatService(store, membership, redis, app.state.rate_limits, settings)
        hub = Fanout(settings)
        hub.start()

        async def on_nats(client) -> None:  # type: ignore[no-untyped-def]
            await ensure_stream(client, settings)

        nats = Nats(settings, on_connect=on_nats)
        nats.start()
        consumer = room_events_consumer(nats, service, settings)
        consumer.start()
        keeper = PresenceKeeper(hub, membership.state, settings.presence_refresh_seconds)
        keeper.start()
        app.state.settings, app.state.redis, app.state.nats = settings, redis, nats
        app.state.service, app.state.fanout, app.state.events = service, hub, consumer
        try:
            yield
        finally:
            # Sockets uvicorn did not close already (another server, a test) learn it too.
            for socket in list(hub.sockets()):
                socket.abort(CLOSE_RESTARTING)
            await keeper.stop()
            await consumer.stop()
            await nats.close()
            await hub.stop()
            await membership.close()
            await redis.aclose()

    def readiness(app: FastAPI):  # type: ignore[no-untyped-def]
        async def redis() -> None:
            await app.state.redis.ping()
            if not app.state.fanout.connected:
                raise ConnectionError("chat fan-out is not subscribed to Redis")

        # NATS is not a readiness dependency: messages and sockets work without it, and the
        # system messages of the events catch up from the stream when it is back.
        return {"redis": redis}

    app = create_service_app(
        service="chat",
        settings=settings,
        lifespan=lifespan,
        readiness=readiness,
        title="veche chat",
    )
    app.include_router(api.router)
    app.include_router(ws.router)
    return app
