"""rooms' PostgreSQL and outbox metrics move under real traffic, read from /metrics as Prometheus
reads them: statement time by kind, the pool's connections in use and its waiting callers, and
the age of the oldest event no relay could publish.

The registry is the process's: other apps of the test session add to the same series, so every
check compares with what the series held before, or waits for a value only this test makes."""

import asyncio

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tests.support import app_client, eventually, hdr, new_pid
from veche.local.stack import free_port
from veche.rooms.main import create_app
from veche.rooms.outbox import OutboxRelay
from veche.rooms.settings import RoomsSettings

Labels = tuple[tuple[str, str], ...]


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, Labels], float]:
    """Every sample of /metrics, by sample name and sorted labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def relay_of(app: FastAPI) -> OutboxRelay:
    return app.state.ctx.relay  # type: ignore[no-any-return]


async def test_statement_time_is_observed_by_kind(api):
    before = await scrape(api)
    created = await api.post("/api/v1/rooms", json={"title": "Metrics"}, headers=hdr(new_pid()))
    assert created.status_code == 201, created.text
    rid = created.json()["room"]["id"]
    join = f"/api/v1/rooms/{rid}/join"
    joined = await api.post(join, json={"display_name": "Anna"}, headers=hdr(new_pid()))
    assert joined.status_code == 201, joined.text

    count = "veche_postgres_query_seconds_count"

    async def observed() -> bool:
        after = await scrape(api)
        # The room, the host's and Anna's memberships and their events are INSERTs (a flush
        # may write several rows of one table in one statement); the relay reads the outbox
        # (SELECT) and marks what it published (UPDATE).
        assert value(after, count, kind="INSERT") >= value(before, count, kind="INSERT") + 4
        for kind in ("SELECT", "UPDATE"):
            assert value(after, count, kind=kind) > value(before, count, kind=kind), kind
        assert value(after, "veche_postgres_query_seconds_sum", kind="INSERT") > value(
            before, "veche_postgres_query_seconds_sum", kind="INSERT"
        )
        top = value(after, "veche_postgres_query_seconds_bucket", kind="INSERT", le="+Inf")
        assert top == value(after, count, kind="INSERT")
        return True

    await eventually(observed, timeout=10)


async def test_the_pool_gauges_show_connections_in_use_and_a_request_waiting_for_one(api):
    engine = relay_of(api.app).engine
    pool = engine.sync_engine.pool
    capacity = pool.size() + pool._max_overflow  # type: ignore[attr-defined]
    assert value(await scrape(api), "veche_postgres_pool_max") >= capacity
    held = []
    request: asyncio.Task[httpx.Response] | None = None
    try:
        # Every connection the pool may open, checked out: the next request has to wait.
        while pool.checkedout() < capacity:  # type: ignore[attr-defined]
            held.append(await engine.connect())
        samples = await scrape(api)
        assert value(samples, "veche_postgres_pool_in_use") >= capacity
        assert value(samples, "veche_postgres_pool_overflow") >= pool._max_overflow  # type: ignore[attr-defined]

        request = asyncio.create_task(
            api.post("/api/v1/rooms", json={"title": "Waits"}, headers=hdr(new_pid()))
        )

        async def waiting() -> bool:
            return value(await scrape(api), "veche_postgres_pool_waiting") >= 1

        # Well within the pool's timeout (DEPENDENCY_TIMEOUT_SECONDS, 3 s).
        await eventually(waiting, timeout=2, interval=0.02)
        await held.pop().close()
        response = await request
        assert response.status_code == 201, response.text
    finally:
        if request is not None and not request.done():
            request.cancel()
        for conn in held:
            await conn.close()

    async def drained() -> bool:
        samples = await scrape(api)
        return value(samples, "veche_postgres_pool_waiting") == 0 and (
            value(samples, "veche_postgres_pool_in_use") < capacity
        )

    await eventually(drained, timeout=5)


async def test_the_oldest_unpublished_event_ages_while_no_relay_can_publish(own_database):
    # Nothing listens at this NATS address: the relay never leads, the events stay in the outbox.
    settings = RoomsSettings(
        database_url=own_database, nats_url=f"nats://127.0.0.1:{free_port()}", outbox_poll_seconds=0.2
    )
    app = create_app(settings)
    async with app_client(app) as client:
        created = await client.post("/api/v1/rooms", json={"title": "Stuck"}, headers=hdr(new_pid()))
        assert created.status_code == 201, created.text
        assert not relay_of(app).leading

        async def aged() -> bool:
            # This relay measures its own database every second; another app of the session
            # may set the process's gauge to its database's 0 in between.
            return value(await scrape(client), "veche_outbox_oldest_unpublished_seconds") >= 1.0

        await eventually(aged, timeout=15, interval=0.05)
