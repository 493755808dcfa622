"""Chat under test with the real PostgreSQL, Redis and NATS.

Rooms runs in-process behind a real HTTP server (chat asks it over HTTP when a membership hash
is missing). Chat runs in-process too: over ASGITransport for REST tests (`chat_app`), or
behind its own uvicorn server for WebSocket tests that need special settings
(`chat_server`). The e2e chat tests use the session `stack` of tests/conftest.py."""

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.chat.support import Room
from tests.support import Served, app_client, serve  # noqa: F401 - Served is re-exported
from veche.chat.main import create_app as create_chat_app
from veche.chat.settings import ChatSettings
from veche.chat.wire import UVICORN_OPTIONS as CHAT_UVICORN_OPTIONS
from veche.rooms.main import create_app as create_rooms_app
from veche.rooms.settings import RoomsSettings


def chat_settings(rooms_url: str, **overrides: Any) -> ChatSettings:
    # Each app pulls the run's events through a durable of its own, so stopping one never
    # holds back another's events.
    overrides.setdefault("chat_events_durable", f"chat-test-{uuid.uuid4().hex[:8]}")
    overrides.setdefault("rooms_internal_url", rooms_url)
    return ChatSettings(**overrides)


@pytest.fixture(scope="session")
async def rooms_url() -> AsyncIterator[str]:
    async with serve(create_rooms_app(RoomsSettings())) as served:
        yield served.url


@pytest.fixture(scope="session")
async def rooms_api(rooms_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rooms_url, timeout=15) as client:
        yield client


ChatApp = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]
ChatServer = Callable[..., contextlib.AbstractAsyncContextManager[Served]]


@pytest.fixture(scope="session")
def chat_app(rooms_url: str) -> ChatApp:
    """`async with chat_app(**settings) as client`: a chat app in-process over ASGITransport;
    `client.app` is the app."""

    @contextlib.asynccontextmanager
    async def make(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_chat_app(chat_settings(rooms_url, **overrides))
        async with app_client(app) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client

    return make


@pytest.fixture(scope="session")
def chat_server(rooms_url: str) -> ChatServer:
    """`async with chat_server(**settings) as served`: a chat app behind real HTTP and
    WebSockets, in-process, at `served.url`; `asgi_path=True` serves it without the chat's
    own WebSocket protocol (every frame through an ASGI send)."""

    @contextlib.asynccontextmanager
    async def make(*, asgi_path: bool = False, **overrides: Any) -> AsyncIterator[Served]:
        # As the chat runs (veche.chat.wire), unless a test asks for the plain ASGI path.
        options = {} if asgi_path else CHAT_UVICORN_OPTIONS
        async with serve(create_chat_app(chat_settings(rooms_url, **overrides)), **options) as served:
            yield served

    return make


@pytest.fixture(scope="session")
async def chat_api(chat_app: ChatApp) -> AsyncIterator[httpx.AsyncClient]:
    async with chat_app() as client:
        yield client


@pytest.fixture
async def room(rooms_api: httpx.AsyncClient, chat_api: httpx.AsyncClient) -> Room:
    """A room with its host, whose "Host joined" line is already posted: what a test then
    posts is all that comes after it."""
    made = await Room.create(rooms_api, chat_api)
    await made.wait_for_system("Host joined")
    return made
