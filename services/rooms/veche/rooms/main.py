"""The rooms process: `uvicorn --factory veche.rooms.main:create_app`."""

import gc
import time
import weakref
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

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

# A connection checked in less than this long ago is handed out again without a ping.
FRESH_SECONDS = 1.0


def cheaper_pre_ping(engine: AsyncEngine) -> None:
    """The pool's pre-ping (veche.common.clients.create_engine), made cheaper for rooms, whose
    requests are a statement or two: at a few hundred requests a second the ping was a third
    of their round trips to PostgreSQL.

    - A connection checked back in less than FRESH_SECONDS ago, and that asyncpg does not know
      to be closed, is handed out without a ping: it answered just now, and a server that
      stops or ends a backend closes its socket, which asyncpg sees at once.
    - Any other is pinged in one round trip (`;`) instead of three: SQLAlchemy's asyncpg dialect
      wraps it in BEGIN ... ROLLBACK for pgbouncer's transaction mode, in which rooms cannot
      run anyway (the relay holds a session-level advisory lock and LISTENs).

    A connection that is gone is still found and replaced before anyone uses it."""
    dialect = engine.dialect
    ping = dialect.do_ping
    checked_in: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if dbapi_connection is not None:  # None: it was invalidated
            checked_in[dbapi_connection.driver_connection] = time.monotonic()

    def do_ping(dbapi_connection: Any) -> bool:
        driver = dbapi_connection.driver_connection
        since = checked_in.pop(driver, None)
        if since is not None and time.monotonic() - since < FRESH_SECONDS and not driver.is_closed():
            return True
        # The asyncpg adapter pings with no transaction around in autocommit mode. The mode is
        # the adapter's own flag (set_isolation_level would roll back, a round trip).
        dbapi_connection.autocommit = True
        try:
            return ping(dbapi_connection)
        finally:
            dbapi_connection.autocommit = False

    event.listen(engine.sync_engine.pool, "checkin", on_checkin)
    dialect.do_ping = do_ping  # type: ignore[method-assign]


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
        cheaper_pre_ping(engine)
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
