"""The chat process: `uvicorn --factory veche.chat.main:create_app`.

On SIGTERM uvicorn closes every open socket with 1012 (service restart) before the lifespan
ends, so clients reconnect with `after` to another replica; the lifespan then stops pulling
events (unacked ones go to the other replicas) and closes its connections."""

from fastapi import FastAPI

from veche.chat import api, ws
from veche.chat.consumers import room_events_consumer
from veche.chat.context import ChatContext
from veche.chat.fanout import Fanout
from veche.chat.frames import CLOSE_RESTARTING
from veche.chat.presence import PresenceKeeper
from veche.chat.service import ChatService
from veche.chat.settings import ChatSettings
from veche.chat.store import ChatStore
from veche.common.app import Resources, service_app


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()

    async def setup(app: FastAPI, res: Resources) -> ChatContext:
        redis = res.redis()
        membership = res.membership(redis)
        service = ChatService(ChatStore(redis, settings), membership, app.state.rate_limits, settings)
        hub = res.worker(Fanout(settings, redis))

        async def fanout_subscribed() -> None:
            if not hub.connected:
                raise ConnectionError("chat fan-out is not subscribed to Redis")

        # Part of the Redis check: a replica whose fan-out is not subscribed cannot serve
        # sockets. NATS is no readiness dependency: messages and sockets work without it, and
        # the system messages of the events catch up from the stream when it is back.
        redis_ping = res.checks["redis"]

        async def redis_and_fanout() -> None:
            await redis_ping()
            await fanout_subscribed()

        res.checks["redis"] = redis_and_fanout
        nats = res.nats()
        events = res.worker(room_events_consumer(nats, service, settings))
        res.worker(PresenceKeeper(hub, membership.state, settings.presence_refresh_seconds))

        async def tell_sockets() -> None:
            # Sockets uvicorn did not close already (another server, a test) learn it too.
            for socket in list(hub.sockets()):
                socket.abort(CLOSE_RESTARTING)

        res.on_close(tell_sockets)  # registered last: runs first on shutdown
        return ChatContext(settings, service, hub, redis, nats, events)

    app = service_app(service="chat", settings=settings, setup=setup, title="veche chat")
    app.include_router(api.router)
    app.include_router(ws.router)
    return app
