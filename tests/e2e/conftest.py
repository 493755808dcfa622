"""The real processes behind the real Traefik, on free ports, for the whole e2e session."""

import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from stack import Stack, free_port


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    run_dir = Path(tempfile.mkdtemp(prefix="veche-e2e-"))
    ports = {name: free_port() for name in ("rooms", "chat", "media-token", "janitor", "web")}
    env = {
        # A LiveKit server that does not exist: media calls must never break the stack.
        "LIVEKIT_URL": os.environ.get("E2E_LIVEKIT_URL", f"ws://127.0.0.1:{free_port()}"),
        "GATEWAY_RATE_AVERAGE": "1000",
        "GATEWAY_RATE_BURST": "2000",
    }
    stack = Stack(run_dir=run_dir, env=env, gateway_port=free_port(), ports=ports,
                  extra_chat_ports=[free_port()])
    try:
        stack.start(timeout=90)
    except Exception:
        stack.stop()
        for log in sorted(run_dir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-3000:]}")
        raise
    yield stack
    stack.stop()


@pytest.fixture
async def gw(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as client:
        yield client
