"""rooms on a database that is not migrated (yet): not ready, and 503 rather than 500; and two
migration runs at once (rooms pods' initContainers starting together) take turns."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import ROOT, RUN_ID, _admin, _db_parts
from tests.support import app_client, hdr, new_pid
from veche.rooms.main import create_app
from veche.rooms.schema import MIGRATION_LOCK, code_heads
from veche.rooms.settings import RoomsSettings

ALEMBIC_INI = str(ROOT / "services/rooms/alembic.ini")


@pytest.fixture
async def empty_database(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A database of this test's own with no schema at all."""
    name = f"veche_test_{RUN_ID}_{request.node.name[5:25].lower()}"
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}"')
    yield _db_parts._replace(path=f"/{name}").geturl()
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def alembic(url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "alembic",
        "-c",
        ALEMBIC_INI,
        *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def versions(url: str) -> list[str]:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return [row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")]
    finally:
        await conn.close()


async def test_rooms_is_not_ready_until_the_schema_is_at_head_and_answers_503_meanwhile(empty_database):
    app = create_app(RoomsSettings(database_url=empty_database))
    async with app_client(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.headers["content-type"] == "application/problem+json"
        body = ready.json()
        assert body["code"] == "unavailable" and body["detail"] == "Not ready: schema"
        assert body["checks"] == {"postgres": "ok", "redis": "ok", "schema": "error: SchemaNotMigrated"}
        assert ready.headers["retry-after"]

        # A request that reaches the missing tables anyway: the service is unavailable, not broken.
        created = await client.post("/api/v1/rooms", json={"title": "Too early"}, headers=hdr(new_pid()))
        assert created.status_code == 503, created.text
        assert created.headers["content-type"] == "application/problem+json"
        assert created.json()["code"] == "unavailable"
        assert created.json()["detail"] == "The database schema is not migrated yet"

        code, output = await alembic(empty_database, "upgrade", "head")
        assert code == 0, output

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json() == {
            "status": "ready",
            "checks": {"postgres": "ok", "redis": "ok", "schema": "ok"},
        }
        created = await client.post("/api/v1/rooms", json={"title": "Now"}, headers=hdr(new_pid()))
        assert created.status_code == 201, created.text


async def test_a_schema_behind_the_code_is_not_ready_either(empty_database):
    heads = code_heads()
    assert len(heads) == 1
    code, output = await alembic(empty_database, "upgrade", "head")
    assert code == 0, output
    code, output = await alembic(empty_database, "downgrade", "-1")
    assert code == 0, output
    assert await versions(empty_database) != sorted(heads)

    app = create_app(RoomsSettings(database_url=empty_database))
    async with app_client(app) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["schema"] == "error: SchemaNotMigrated"
        code, output = await alembic(empty_database, "upgrade", "head")
        assert code == 0, output
        assert (await client.get("/readyz")).status_code == 200


async def test_a_migration_run_waits_for_the_one_in_progress(empty_database):
    # A run in progress elsewhere holds the migration lock: a second run waits for it, and only
    # then reads the schema's revision and migrates.
    holder = await asyncpg.connect(empty_database.replace("postgresql+asyncpg", "postgresql"))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        waiting = asyncio.create_task(alembic(empty_database, "upgrade", "head"))
        await asyncio.sleep(3)
        assert not waiting.done()
        assert await holder.fetchval("SELECT to_regclass('alembic_version')") is None
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        code, output = await asyncio.wait_for(waiting, 60)
        assert code == 0, output
    finally:
        await holder.close()
    assert await versions(empty_database) == sorted(code_heads())


async def test_runs_started_together_all_succeed(empty_database):
    results = await asyncio.gather(*(alembic(empty_database, "upgrade", "head") for _ in range(3)))
    for code, output in results:
        assert code == 0, output
    assert await versions(empty_database) == sorted(code_heads())
