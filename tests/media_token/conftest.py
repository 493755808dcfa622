"""media-token against real PostgreSQL, Redis, NATS and LiveKit: a real rooms process makes,
ends and kicks rooms (its events go through its outbox to this run's stream), media-token runs
in-process against the run's LiveKit server. Outages of LiveKit are played with the
RecordingLiveKitDouble (`media_on_double`), the only test double."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.media_token.support import Meeting
from tests.support import app_client
from tests.support.livekit_double import RecordingLiveKitDouble
from tests.support.livekit_server import LiveKitServer
from veche.common.internal import internal_headers
from veche.common.settings import CommonSettings
from veche.local.stack import ROOT, free_port, healthy, uvicorn_cmd
from veche.media_token.main import create_app
from veche.media_token.settings import MediaSettings


@pytest.fixture(scope="session")
async def livekit_double() -> AsyncIterator[RecordingLiveKitDouble]:
    double = RecordingLiveKitDouble()
    await double.start()
    yield double
    await double.stop()


@pytest.fixture(scope="session")
def rooms_url() -> Iterator[str]:
    """A real rooms process. Empty rooms are due at once (ROOM_EMPTY_TTL_SECONDS=0), so a
    test can expire one the way the janitor does."""
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="veche-media-")) / "rooms.log"
    env = {**os.environ, "ROOM_EMPTY_TTL_SECONDS": "0"}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            uvicorn_cmd("veche.rooms.main:create_app", port),
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not healthy(f"{url}/healthz"):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.stderr.write(log_path.read_text()[-3000:])
                raise RuntimeError(f"rooms did not become healthy (log: {log_path})")
            time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.asynccontextmanager
async def _media_app(livekit_url: str, rooms_url: str, durable: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = MediaSettings(
        livekit_url=livekit_url,
        rooms_internal_url=rooms_url,
        # Its own durable: the e2e stack's media-token consumes this run's stream too.
        livekit_sync_durable=f"{durable}-{os.environ['NATS_STREAM']}",
    )
    app = create_app(settings)
    async with app_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        client.settings = settings  # type: ignore[attr-defined]
        yield client


@pytest.fixture(scope="session")
async def media_app(livekit_server: LiveKitServer, rooms_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with _media_app(livekit_server.url, rooms_url, "media-token-tests") as client:
        yield client


@pytest.fixture(scope="session")
async def media_on_double(
    livekit_double: RecordingLiveKitDouble, rooms_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """media-token whose LiveKit is the double, which a test can switch off."""
    async with _media_app(livekit_double.url, rooms_url, "media-token-double") as client:
        yield client


@pytest.fixture
async def media(media_app: httpx.AsyncClient) -> httpx.AsyncClient:
    return media_app


@pytest.fixture
async def rooms(rooms_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=rooms_url, timeout=15, headers=internal_headers(CommonSettings())
    ) as client:
        yield client


@pytest.fixture
async def meeting(rooms: httpx.AsyncClient) -> Meeting:
    return await Meeting(rooms).create()
