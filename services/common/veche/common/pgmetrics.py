"""Prometheus metrics of a process's PostgreSQL pool and queries (rooms).

The pool gauges are read from the pools themselves when /metrics is scraped, summed over every
engine the process made (one in a service; tests make several): connections checked out,
callers waiting for one, connections open beyond the pool's size, and the most it may open.
Query time comes from SQLAlchemy's cursor events, by statement kind.

Imported by `veche.common.clients.create_engine` only, so the services without PostgreSQL
neither import SQLAlchemy nor export these metrics."""

import time
import weakref
from collections.abc import Callable
from typing import Any

from prometheus_client import Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, PoolProxiedConnection

POOL_IN_USE = Gauge("veche_postgres_pool_in_use", "PostgreSQL connections checked out of the pool")
POOL_WAITING = Gauge(
    "veche_postgres_pool_waiting",
    "Callers that asked the pool for a PostgreSQL connection and have none yet "
    "(waiting for a free one, or for a new one to open)",
)
POOL_OVERFLOW = Gauge(
    "veche_postgres_pool_overflow",
    "PostgreSQL connections open beyond the pool's size (max_overflow caps it)",
)
POOL_MAX = Gauge(
    "veche_postgres_pool_max", "The most PostgreSQL connections the pool may open (size + overflow)"
)
QUERY_SECONDS = Histogram(
    "veche_postgres_query_seconds",
    "PostgreSQL statement time, from the driver's execute to its answer",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_KINDS = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
_STARTED = "veche_query_started"


class MeteredPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, counting the callers inside `connect()`: those that
    got a connection at once leave it without yielding to the event loop, so a scrape sees
    only the ones that wait (for a free connection, a new one, or its pre-ping)."""

    waiting = 0

    def connect(self) -> PoolProxiedConnection:
        self.waiting += 1
        try:
            return super().connect()
        finally:
            self.waiting -= 1


# The engines of this process (weakly: a disposed and dropped engine leaves by itself).
_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


def _pools() -> list[MeteredPool]:
    return [pool for engine in list(_engines) if isinstance(pool := engine.pool, MeteredPool)]


def _sum(read: Callable[[MeteredPool], int]) -> Callable[[], float]:
    return lambda: float(sum(read(pool) for pool in _pools()))


POOL_IN_USE.set_function(_sum(lambda pool: pool.checkedout()))
POOL_WAITING.set_function(_sum(lambda pool: pool.waiting))
POOL_OVERFLOW.set_function(_sum(lambda pool: max(pool.overflow(), 0)))
POOL_MAX.set_function(_sum(lambda pool: pool.size() + max(pool._max_overflow, 0)))


def statement_kind(statement: str) -> str:
    """SELECT, INSERT, UPDATE, DELETE, or other (a CTE, DDL, LISTEN, a transaction verb)."""
    head = statement.lstrip(" \t\r\n(").split(None, 1)
    kind = head[0].upper() if head else ""
    return kind if kind in _KINDS else "other"


def _before_cursor_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    # One statement at a time per connection: a failed one's start is overwritten by the next.
    conn.info[_STARTED] = time.perf_counter()


def _after_cursor_execute(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    started = conn.info.pop(_STARTED, None)
    if started is not None:
        QUERY_SECONDS.labels(statement_kind(statement)).observe(time.perf_counter() - started)


def watch(engine: Engine) -> None:
    """Counts this engine's pool in the gauges and times its statements (the sync engine of
    an AsyncEngine: that is where SQLAlchemy's events fire)."""
    _engines.add(engine)
    event.listen(engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(engine, "after_cursor_execute", _after_cursor_execute)
