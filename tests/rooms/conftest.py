"""The rooms app in-process (real PostgreSQL, Redis and NATS), one per test session."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support import app_client, hdr, new_pid
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings


@pytest.fixture(scope="session")
async def rooms_app():
    app = create_app(RoomsSettings())
    async with app_client(app) as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def api(rooms_app: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    yield rooms_app


class RoomFixture:
    """A room with a host, made through the API."""

    def __init__(self, client: httpx.AsyncClient, body: dict[str, Any]) -> None:
        self.client = client
        self.body = body
        self.host = new_pid()
        self.id = ""
        self.host_public_id = ""

    async def create(self) -> "RoomFixture":
        response = await self.client.post("/api/v1/rooms", json=self.body, headers=hdr(self.host))
        assert response.status_code == 201, response.text
        self.id = response.json()["room"]["id"]
        self.host_public_id = response.json()["participant"]["id"]
        return self

    async def join(self, name: str = "Guest", pid: str | None = None) -> tuple[str, dict[str, Any]]:
        pid = pid or new_pid()
        response = await self.client.post(
            f"/api/v1/rooms/{self.id}/join", json={"display_name": name}, headers=hdr(pid)
        )
        assert response.status_code in (200, 201), response.text
        return pid, response.json()


@pytest.fixture
async def room(api: httpx.AsyncClient) -> RoomFixture:
    return await RoomFixture(api, {"title": "Weekly sync", "max_participants": 5}).create()


@pytest.fixture
async def make_room(api: httpx.AsyncClient):  # type: ignore[no-untyped-def]
    async def make() -> RoomFixture:
        return await RoomFixture(api, {"title": "Another", "max_participants": 5}).create()

    return make


@pytest.fixture(scope="session")
async def db():
    """A plain asyncpg connection to this run's database, for checks the API cannot show."""
    import os

    import asyncpg

    conn = await asyncpg.connect(os.environ["DATABASE_URL"].replace("postgresql+asyncpg", "postgresql"))
    yield conn
    await conn.close()


@pytest.fixture
def own_database(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A database of this test's own: no other relay of the run may publish its outbox."""
    from tests.conftest import RUN_ID, create_migrated_database, drop_database

    name = f"veche_test_{RUN_ID}_{request.node.name[:20].lower()}"
    yield create_migrated_database(name)
    drop_database(name)
