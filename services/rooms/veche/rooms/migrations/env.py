"""Alembic environment: runs the rooms migrations against DATABASE_URL with asyncpg.

Every run holds a session-level advisory lock (MIGRATION_LOCK) from before it reads the
schema's revision until after it commits: two `alembic upgrade head` at once (the initContainers
of rooms pods starting together in Kubernetes) run one after the other, and the second finds the
schema at head and does nothing."""

import asyncio
import os

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from veche.rooms.schema import MIGRATION_LOCK

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/veche"


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    url = os.environ.get("DATABASE_URL") or context.config.get_main_option("sqlalchemy.url") or DEFAULT_URL
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        # Waits for a run in progress elsewhere; committed at once so that the lock (held by the
        # session, not the transaction) is all that stays, and Alembic begins its own transaction.
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        await connection.commit()
        await connection.run_sync(_run)
        # After a failed run (or a killed pod) the lock goes with the connection: NullPool really
        # closes it.
        await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        await connection.commit()
    await engine.dispose()


asyncio.run(_main())
