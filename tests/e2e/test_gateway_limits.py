"""The gateway's own per-address limit (Traefik's rateLimit), on a gateway of its own with a
strict limit: a flood from one address is cut, and spoofed forwarded headers do not evade
the limit a service counts."""

import asyncio
import tempfile
from pathlib import Path

import httpx
import pytest

from veche.local.stack import Stack, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def strict_gateway():
    """rooms behind its own Traefik, with a tight create limit and a tight gateway limit."""
    run_dir = Path(tempfile.mkdtemp(prefix="veche-limits-"))
    ports = {name: free_port() for name in ("rooms", "chat", "media-token", "janitor", "web")}
    env = {
        "RATE_LIMIT_CREATE_ROOM": "3/minute",
        "GATEWAY_RATE_AVERAGE": "5",
        "GATEWAY_RATE_BURST": "10",
    }
    running = Stack(run_dir=run_dir, env=env, gateway_port=free_port(), ports=ports, only={"rooms"})
    running.start(timeout=60)
    yield running
    running.stop()


async def test_a_spoofed_forwarded_for_does_not_evade_the_per_address_limit(strict_gateway):
    async with httpx.AsyncClient(base_url=strict_gateway.url, timeout=10) as client:
        statuses = []
        for i in range(5):
            spoof = {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"203.0.113.{100 + i}"}
            response = await client.post("/api/v1/rooms", json={"title": "s"}, headers=spoof)
            statuses.append(response.status_code)
            await asyncio.sleep(0.25)  # stay under the gateway's own limit
        assert statuses == [201, 201, 201, 429, 429]


async def test_the_gateway_limits_a_flood_from_one_address(strict_gateway):
    async with httpx.AsyncClient(base_url=strict_gateway.url, timeout=10) as client:
        url = "/api/v1/rooms/00000000-0000-4000-8000-000000000000"
        responses = await asyncio.gather(*(client.get(url) for _ in range(40)))
    statuses = [r.status_code for r in responses]
    assert statuses.count(429) >= 20, statuses
    assert statuses.count(404) >= 5, statuses
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers.get("retry-after")
    # The bucket refills at GATEWAY_RATE_AVERAGE per second.
    await asyncio.sleep(1.5)
    async with httpx.AsyncClient(base_url=strict_gateway.url, timeout=10) as client:
        assert (await client.get(url)).status_code == 404
