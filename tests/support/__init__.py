"""Helpers shared by the tests: in-process apps, event readers, polling."""

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import uvicorn
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def app_client(
    app: FastAPI, base_url: str = "http://testserver", client: tuple[str, int] = ("198.51.100.7", 4711)
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on an app whose lifespan runs for the duration. By default the client is
    a direct peer (198.51.100.7); `GATEWAY_PEER` makes it the gateway, whose X-Real-IP counts."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=15) as client:
            yield client


GATEWAY_PEER = ("127.0.0.1", 4712)


def new_pid() -> str:
    return str(uuid.uuid4())


def hdr(pid: str) -> dict[str, str]:
    return {"X-Participant-ID": pid}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10, interval: float = 0.05) -> Any:
    """Polls check() until it returns a truthy value or raises nothing falsy; returns it."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = await check()
            if value:
                return value
        except AssertionError as exc:
            last_exc = exc
        await asyncio.sleep(interval)
    if last_exc:
        raise last_exc
    raise AssertionError("condition not met in time")


class EventReader:
    """Reads this run's ROOMS stream from the beginning with an ephemeral consumer."""

    def __init__(self) -> None:
        self.nc: nats.NATS | None = None
        self.events: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def __aenter__(self) -> "EventReader":
        self.nc = await nats.connect(os.environ["NATS_URL"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.nc:
            await self.nc.close()

    async def read_room(
        self, room_id: str, expected: int, timeout: float = 10
    ) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        """Every event of a room, waiting until at least `expected` are there."""
        assert self.nc is not None
        js = self.nc.jetstream()
        prefix = os.environ["NATS_SUBJECT_PREFIX"]
        deadline = time.monotonic() + timeout
        while True:
            sub = await js.subscribe(f"{prefix}.{room_id}.>", ordered_consumer=True)
            got: list[tuple[str, dict[str, str], dict[str, Any]]] = []
            try:
                while True:
                    try:
                        msg = await sub.next_msg(timeout=0.5)
                    except (TimeoutError, nats.errors.TimeoutError):
                        break
                    got.append((msg.subject, dict(msg.headers or {}), json.loads(msg.data)))
            finally:
                await sub.unsubscribe()
            if len(got) >= expected or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.2)


class _Server(uvicorn.Server):
    """uvicorn inside the test's event loop; the signals stay pytest's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Served:
    url: str
    app: FastAPI


@contextlib.asynccontextmanager
async def serve(app: FastAPI, **options: Any) -> AsyncIterator[Served]:
    """Serves `app` (lifespan included) on a free port; `options` go to uvicorn.Config."""
    from veche.local.stack import free_port

    port = free_port()
    server = _Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
            **options,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        await task
