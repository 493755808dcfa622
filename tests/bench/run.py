"""`make bench`: latency and throughput of the main API calls through the real gateway, and the
media figures of a real LiveKit server (tests/bench/media.py).

Starts the whole stack on free ports against a database of its own, drives it from one
process with concurrent clients, prints percentiles. Numbers, not assertions."""

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

from tests.bench.media import bench_media
from veche.local.isolated import isolated_stack

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))


async def measure(name: str, call: Callable[[int], Awaitable[httpx.Response]]) -> None:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(REQUESTS))

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            started = time.perf_counter()
            response = await call(i)
            latencies.append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<28} {len(latencies) / elapsed:8.1f} req/s   p50 {q[49] * 1000:6.1f} ms   "
        f"p95 {q[94] * 1000:6.1f} ms   p99 {q[98] * 1000:6.1f} ms   errors {errors}"
    )


async def bench(url: str) -> None:
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY * 2)
    ) as client:
        host = str(uuid.uuid4())
        big = await client.post(
            "/api/v1/rooms",
            json={"title": "bench", "max_participants": 100},
            headers={"X-Participant-ID": host},
        )
        room_id = big.json()["room"]["id"]
        await measure("POST /rooms", lambda i: client.post("/api/v1/rooms", json={"title": f"r{i}"}))
        await measure("GET /rooms/{id}", lambda i: client.get(f"/api/v1/rooms/{room_id}"))
        await measure(
            "POST /rooms/{id}/join (rejoin)",
            lambda i: client.post(
                f"/api/v1/rooms/{room_id}/join",
                json={"display_name": "Host"},
                headers={"X-Participant-ID": host},
            ),
        )
        await measure(
            "GET /rooms/{id}/participants", lambda i: client.get(f"/api/v1/rooms/{room_id}/participants")
        )
        await measure(
            "POST /chat/messages",
            lambda i: client.post(
                f"/api/v1/rooms/{room_id}/chat/messages",
                json={"content": f"m{i}"},
                headers={"X-Participant-ID": host},
            ),
        )
        await measure(
            "GET /chat/messages?limit=50",
            lambda i: client.get(
                f"/api/v1/rooms/{room_id}/chat/messages?limit=50", headers={"X-Participant-ID": host}
            ),
        )


def main() -> None:
    env = {
        "RATE_LIMITS_ENABLED": "false",
        "GATEWAY_RATE_AVERAGE": "100000",
        "GATEWAY_RATE_BURST": "100000",
        "LOG_LEVEL": "WARNING",
    }
    with isolated_stack("bench", env) as stack:
        print(f"concurrency {CONCURRENCY}, {REQUESTS} requests per call, one process per service")
        asyncio.run(bench(stack.url))
        livekit = stack.infra.named["livekit"]  # type: ignore[attr-defined]
        asyncio.run(bench_media(stack.url, livekit.pid))


if __name__ == "__main__":
    main()
