"""A small stack of real processes with the janitor's intervals set to seconds: rooms with a
2 s empty-room TTL, two janitor replicas sharing one durable consumer, and chat once it has its
WebSocket. They share this run's database, Redis and stream (from os.environ, see
tests/conftest.py); no gateway is needed, the tests talk to rooms directly."""

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from tests.janitor.support import (
    PRESENCE_TIMEOUT_SECONDS,
    ROOM_EMPTY_TTL_SECONDS,
    JanitorStack,
)
from veche.common.internal import internal_headers
from veche.common.settings import CommonSettings
from veche.local.stack import Stack, free_port, uvicorn_cmd


# Package scope: its janitors sweep the whole run's database with a 3 s presence timeout, so
# they must be gone before any other package's tests run.
@pytest.fixture(scope="package")
def jstack() -> Iterator[JanitorStack]:
    run_dir = Path(tempfile.mkdtemp(prefix="veche-janitor-"))
    rooms_port = free_port()
    env = {
        **os.environ,
        "LOG_LEVEL": "INFO",
        "ROOMS_INTERNAL_URL": f"http://127.0.0.1:{rooms_port}",
        "ROOM_EMPTY_TTL_SECONDS": str(ROOM_EMPTY_TTL_SECONDS),
        # A chat socket refreshes presence every second, well within the presence timeout.
        "PRESENCE_REFRESH_SECONDS": "1",
        "PRESENCE_TIMEOUT_SECONDS": str(PRESENCE_TIMEOUT_SECONDS),
        "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}",
    }
    stack = JanitorStack(
        runner=Stack(run_dir=run_dir, env={}),
        env=env,
        rooms_url=f"http://127.0.0.1:{rooms_port}",
        durable=f"janitor-{os.environ['NATS_STREAM']}-jt",
    )
    started = [stack.start("rooms", uvicorn_cmd("veche.rooms.main:create_app", rooms_port), rooms_port, {})]
    chat_port = free_port()
    stack.chat_url = f"http://127.0.0.1:{chat_port}"
    started.append(stack.start("chat", uvicorn_cmd("veche.chat.main:create_app", chat_port), chat_port, {}))
    stack.janitors = [stack.start_janitor(f"janitor{i}", stack.durable) for i in (1, 2)]
    try:
        stack.wait_ready(started + stack.janitors)
        yield stack
    finally:
        stack.runner.stop()


@pytest.fixture
async def rooms_api(jstack: JanitorStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=jstack.rooms_url, timeout=15, headers=internal_headers(CommonSettings())
    ) as client:
        yield client


@pytest.fixture(scope="session")
async def jdb() -> AsyncIterator[asyncpg.Connection]:
    """This run's database, to read what the API cannot show and to set up old rooms."""
    conn = await asyncpg.connect(os.environ["DATABASE_URL"].replace("postgresql+asyncpg", "postgresql"))
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
async def js() -> AsyncIterator[Any]:
    nc = await nats.connect(os.environ["NATS_URL"])
    yield nc.jetstream()
    await nc.close()
