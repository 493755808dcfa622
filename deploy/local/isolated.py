"""A whole stack on free ports with a database and event stream of its own, for `make bench`
and `make fuzz`: it never sees the data of `make run` or of a test run."""

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from infra import ensure_database, migrate
from stack import Stack, free_port


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
    base = os.environ.get("DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/veche")
    database_url = f"{base.rsplit('/', 1)[0]}/veche_{purpose}_{run}"
    full_env = {
        "DATABASE_URL": database_url,
        "NATS_STREAM": f"ROOMS_{purpose.upper()}_{run}",
        "NATS_SUBJECT_PREFIX": f"{purpose}{run}rooms",
        **(env or {}),
    }
    os.environ.update(full_env)
    ensure_database(database_url)
    migrate(database_url)
    ports = {name: free_port() for name in ("rooms", "chat", "media-token", "janitor", "web")}
    stack = Stack(run_dir=Path(tempfile.mkdtemp(prefix=f"veche-{purpose}-")), env=full_env,
                  gateway_port=free_port(), ports=ports)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        asyncio.run(_drop_database(database_url))
