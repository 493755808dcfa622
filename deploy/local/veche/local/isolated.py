"""A whole stack on free ports with a database, event stream and LiveKit server of its own, for
`make bench` and `make fuzz`: it never sees the data of `make run` or of a test run. Servers
that do not listen (PostgreSQL, Redis, NATS) are started as `make run` starts them."""

import asyncio
import contextlib
import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from veche.local.infra import LocalInfra, ensure_database, migrate
from veche.local.stack import Stack, free_port
from veche.rooms.settings import RoomsSettings


async def _drop_database(url: str) -> None:
    import asyncpg

    base, name = url.replace("postgresql+asyncpg", "postgresql").rsplit("/", 1)
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.contextmanager
def isolated_stack(purpose: str, env: dict[str, str] | None = None) -> Iterator[Stack]:
    run = uuid.uuid4().hex[:8]
    os.environ.setdefault("DEV_MODE", "true")
    settings = RoomsSettings()  # every URL and key a local run needs
    infra = LocalInfra(Path(tempfile.mkdtemp(prefix=f"veche-{purpose}-infra-")))
    gateway_port = free_port()
    livekit_url = f"ws://127.0.0.1:{free_port()}"
    base_udp = random.randrange(40000, 49000, 60)
    try:
        infra.postgres(settings.database_url)
        infra.redis(settings.redis_url)
        infra.nats(settings.nats_url)
        infra.livekit(
            livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
            webhook_url=f"http://127.0.0.1:{gateway_port}/api/v1/livekit/webhook",
            tcp_port=free_port(),
            udp_ports=(base_udp, base_udp + 59),
        )
        database_url = f"{settings.database_url.rsplit('/', 1)[0]}/veche_{purpose}_{run}"
        full_env = {
            "DATABASE_URL": database_url,
            "NATS_STREAM": f"ROOMS_{purpose.upper()}_{run}",
            "NATS_SUBJECT_PREFIX": f"{purpose}{run}rooms",
            "LIVEKIT_URL": livekit_url,
            **(env or {}),
        }
        os.environ.update(full_env)
        ensure_database(database_url)
        migrate(database_url)
        ports = {name: free_port() for name in ("rooms", "chat", "media-token", "janitor", "web")}
        stack = Stack(
            run_dir=Path(tempfile.mkdtemp(prefix=f"veche-{purpose}-")),
            env=full_env,
            gateway_port=gateway_port,
            ports=ports,
        )
        try:
            stack.start()
            stack.infra = infra  # type: ignore[attr-defined]
            yield stack
        finally:
            stack.stop()
            asyncio.run(_drop_database(database_url))
    finally:
        infra.stop()
