"""The gateway when a service has no replica that can answer: the contract's 503 problem+json with
Retry-After (never Traefik's plain-text 502), while a service's own answers, its 429 among
them, pass through untouched. A small stack of its own: the gateway, web and rooms, and no
chat or media-token at all."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import hdr, new_pid
from veche.local.stack import Stack, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def half_stack() -> Iterator[Stack]:
    stack = Stack(
        run_dir=Path(tempfile.mkdtemp(prefix="veche-half-stack-")),
        env={"LIVEKIT_URL": "", "RATE_LIMIT_CREATE_ROOM": "1/minute", "RETRY_AFTER_SECONDS": "7"},
        gateway_port=free_port(),
        ports={n: free_port() for n in ("rooms", "chat", "media-token", "janitor", "web")},
        only={"rooms", "web"},
    )
    try:
        stack.start(timeout=60)
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/rooms/0190b3a2-0000-7000-8000-000000000000/chat/messages"),
        ("POST", "/api/v1/rooms/0190b3a2-0000-7000-8000-000000000000/media/token"),
        ("GET", "/ws/chat/0190b3a2-0000-7000-8000-000000000000"),
    ],
)
async def test_a_service_with_no_replica_answers_503_problem_json(half_stack, method, path):
    async with httpx.AsyncClient(base_url=half_stack.url, timeout=10) as client:
        response = await client.request(method, path, headers=hdr(new_pid()))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["retry-after"] == "7"
    body = response.json()
    assert body["status"] == 503 and body["code"] == "unavailable"


async def test_a_services_own_answers_and_its_429_pass_untouched(half_stack):
    async with httpx.AsyncClient(base_url=half_stack.url, timeout=10) as client:
        pid = new_pid()
        first = await client.post("/api/v1/rooms", json={"title": "One"}, headers=hdr(pid))
        assert first.status_code == 201, first.text
        limited = await client.post("/api/v1/rooms", json={"title": "Two"}, headers=hdr(pid))
        missing = await client.get("/api/v1/rooms/0190b3a2-0000-7000-8000-000000000000")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 7  # rooms' own window, not the gateway's page
    assert missing.status_code == 404
    assert missing.json()["code"] == "room_not_found"
