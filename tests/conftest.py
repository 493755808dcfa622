"""Test harness: every run gets its own PostgreSQL database, NATS stream and subject prefix,
and its own LiveKit server, against real servers: the ones listening, or ones it starts."""

import asyncio
import atexit
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

# Fixtures that tests of several packages use.
pytest_plugins = ["tests.support.own_redis"]

if TYPE_CHECKING:
    import httpx

    from tests.support.livekit_server import LiveKitServer
    from veche.local.infra import LocalInfra
    from veche.local.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
# Kept in the environment so a second import of this module (or a child process) agrees.
RUN_ID = os.environ.setdefault("VECHE_TEST_RUN_ID", secrets.token_hex(4))

BASE_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# A Redis database of this run's own (1-15), so two runs at once never share rate-limit
# counters or keys; 0 is left to `make run`.
BASE_REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{int(RUN_ID, 16) % 15 + 1}")
BASE_NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")

# PostgreSQL, Redis and NATS: reused where they listen, otherwise started for this session by
# the same code that `make run` uses (and stopped at its end).
_infra: "LocalInfra | None" = None


def _start_servers() -> None:
    """Starts whatever of PostgreSQL, Redis and NATS does not listen; once per session, and
    only for a test that needs them (tests/unit/ never does)."""
    global _infra
    if _infra is not None:
        return
    from veche.local.infra import LocalInfra

    _infra = LocalInfra(ROOT / ".run" / f"test-{RUN_ID}")
    # Also when the session never gets to its fixtures (a collection error, an interrupt).
    atexit.register(_infra.stop)
    try:
        _infra.postgres(BASE_DATABASE_URL)
        _infra.redis(BASE_REDIS_URL)
        _infra.nats(BASE_NATS_URL)
    except Exception as exc:
        _infra.stop()
        pytest.exit(f"could not start the servers the tests need: {exc}", 2)


_db_base, _redis_url, _nats_url = BASE_DATABASE_URL, BASE_REDIS_URL, BASE_NATS_URL

# The run's LiveKit server and gateway ports are chosen now, so every process of the run
# (in-process apps, test rooms processes, the e2e stack) points at this run's LiveKit.
from veche.local.stack import free_port  # noqa: E402

LIVEKIT_PORT = free_port()
GATEWAY_PORT = free_port()
# `make test REPLICAS=2`: the e2e stack runs that many replicas of rooms, chat and media-token.
REPLICAS = int(os.environ.get("REPLICAS", "1"))
_db_parts = urlsplit(_db_base)
DATABASE_URL = _db_parts._replace(path=f"/veche_test_{RUN_ID}").geturl()
ADMIN_DATABASE_URL = _db_parts._replace(path="/postgres").geturl()
NATS_STREAM = f"ROOMS_T{RUN_ID}"
NATS_SUBJECT_PREFIX = f"t{RUN_ID}rooms"

# Every Settings() made by the tests, and every process the e2e tests start, reads these.
os.environ.update(
    {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": _redis_url,
        "NATS_URL": _nats_url,
        "NATS_STREAM": NATS_STREAM,
        "NATS_SUBJECT_PREFIX": NATS_SUBJECT_PREFIX,
        "LOG_LEVEL": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        # The development key pair and internal token are fine on this machine.
        "DEV_MODE": "true",
        "LIVEKIT_URL": f"ws://127.0.0.1:{LIVEKIT_PORT}",
        "ROOM_EMPTY_TTL_SECONDS": "300",
        # Every test request comes from one address; the limit tests set their own values.
        "RATE_LIMIT_CREATE_ROOM": "100000/minute",
        "RATE_LIMIT_JOIN": "100000/minute",
        "RATE_LIMIT_CHAT_SEND": "100000/minute",
        "RATE_LIMIT_CHAT_SEND_ADDRESS": "100000/minute",
        "RATE_LIMIT_ROOM": "100000/minute",
    }
)


async def _admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_DATABASE_URL.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _drop_stream() -> None:
    import nats

    try:
        nc = await nats.connect(_nats_url, connect_timeout=2, max_reconnect_attempts=1)
    except Exception:  # noqa: BLE001
        return
    try:
        await nc.jetstream().delete_stream(NATS_STREAM)
    except Exception:  # noqa: BLE001
        pass
    await nc.close()


def create_migrated_database(name: str) -> str:
    """Creates database `name`, migrates it with Alembic, returns its URL."""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    url = _db_parts._replace(path=f"/{name}").geturl()
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "services/rooms/alembic.ini"), "upgrade", "head"],
        check=True,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
    )
    return url


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _unit_only(session: pytest.Session) -> bool:
    return all("unit" in item.path.relative_to(ROOT).parts for item in session.items)


@pytest.fixture(scope="session", autouse=True)
def test_database(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The servers and this run's database, for every session but one of tests/unit/ alone,
    which starts nothing and takes a second or two."""
    if _unit_only(request.session):
        yield None
        return
    _start_servers()
    create_migrated_database(f"veche_test_{RUN_ID}")
    yield DATABASE_URL
    asyncio.run(_drop_stream())
    drop_database(f"veche_test_{RUN_ID}")
    if _infra is not None:
        _infra.stop()


@pytest.fixture(scope="session")
def livekit_server() -> Iterator["LiveKitServer"]:
    """This run's real LiveKit server; its webhooks go to the e2e stack's gateway."""
    import tempfile

    from tests.support.livekit_server import LiveKitServer

    server = LiveKitServer(
        run_dir=Path(tempfile.mkdtemp(prefix="veche-livekit-")),
        port=LIVEKIT_PORT,
        webhook_url=f"http://127.0.0.1:{GATEWAY_PORT}/api/v1/livekit/webhook",
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(livekit_server: "LiveKitServer") -> Iterator["Stack"]:
    """The real processes behind the real Traefik, on free ports, for the whole session."""
    import tempfile

    from veche.local.stack import Stack, free_port

    run_dir = Path(tempfile.mkdtemp(prefix="veche-e2e-"))
    ports = {name: free_port() for name in ("rooms", "chat", "media-token", "janitor", "web")}
    env = {
        "LIVEKIT_URL": livekit_server.url,
        "GATEWAY_RATE_AVERAGE": "1000",
        "GATEWAY_RATE_BURST": "2000",
        "LOG_LEVEL": "INFO",
    }
    # REPLICAS=N (`make test REPLICAS=2`) runs N of rooms, chat and media-token; chat has at
    # least two, for the tests of its cross-replica fan-out.
    count = {"rooms": REPLICAS, "chat": max(REPLICAS, 2), "media-token": REPLICAS}
    running = Stack(
        run_dir=run_dir,
        env=env,
        gateway_port=GATEWAY_PORT,
        ports=ports,
        replicas=count,
        replica_ports={name: [free_port() for _ in range(n - 1)] for name, n in count.items()},
    )
    try:
        running.start(timeout=90)
        running.start_supervisor(say=lambda line: print(f"[stack] {line}", flush=True))
    except Exception:
        running.stop()
        for log in sorted(run_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    yield running
    running.stop()


@pytest.fixture
async def gw(stack: "Stack") -> AsyncIterator["httpx.AsyncClient"]:
    import httpx

    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        yield client


@pytest.fixture(scope="session")
async def redis_client() -> AsyncIterator[object]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(_redis_url, decode_responses=True)
    yield client
    await client.aclose()


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The LiveKit SDK's native runtime may abort the interpreter while it is torn down at exit
    (a Rust panic in a function that cannot unwind), after every test passed: once pytest is
    done, the run leaves with its own status before that teardown."""
    if "livekit.rtc" in sys.modules:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
