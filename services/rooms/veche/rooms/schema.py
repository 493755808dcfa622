"""Whether the database's schema is the one this code was written for.

rooms is not ready (`/readyz` answers 503) until the revision in `alembic_version` is the head
of the migrations shipped with the code: a pod never takes traffic on a database that is not
migrated yet, or only part of the way. The head is read from the migration scripts once, when
the process starts; a positive answer is kept (a schema does not go back by itself). A request
that reaches a database without its tables anyway answers 503, not 500."""

import logging
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse

from veche.common.errors import Unavailable, problem_response, unexpected_problem

if TYPE_CHECKING:
    from sqlalchemy.exc import ProgrammingError
    from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("veche.rooms.schema")

SCRIPT_LOCATION = "veche.rooms:migrations"
# The session-level advisory lock every migration run holds (migrations/env.py), so that runs
# at once (rooms pods' initContainers) take turns. "MIGR"; the outbox relay and retention use
# other keys.
MIGRATION_LOCK = 0x4D494752
# PostgreSQL's SQLSTATEs for a table or a column that does not exist (yet).
_UNDEFINED = {"42P01", "42703"}


class SchemaNotMigrated(Exception):
    """The database's schema is not at the code's Alembic head."""


def code_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts in this package."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return frozenset(ScriptDirectory.from_config(config).get_heads())


class SchemaCheck:
    """A readiness check: passes once `alembic_version` holds exactly the code's heads."""

    def __init__(self, engine: "AsyncEngine", heads: frozenset[str]) -> None:
        self.engine = engine
        self.heads = heads
        self.ready = False
        self._said: str | None = None

    async def __call__(self) -> None:
        if self.ready:
            return
        from sqlalchemy import text
        from sqlalchemy.exc import ProgrammingError

        async with self.engine.connect() as conn:
            try:
                rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
            except ProgrammingError as exc:
                if not is_undefined_object(exc):
                    raise
                self._fail("the database has no schema (no alembic_version table)")
            found = frozenset(rows.scalars().all())
        if found != self.heads:
            self._fail(
                f"the database's schema is at {', '.join(sorted(found)) or 'no revision'}, "
                f"the code needs {', '.join(sorted(self.heads))}"
            )
        self.ready = True
        log.info("database schema at %s", ", ".join(sorted(self.heads)))

    def _fail(self, why: str) -> None:
        if why != self._said:  # logged once per state, not on every probe
            self._said = why
            log.warning("not ready: %s; run `alembic -c services/rooms/alembic.ini upgrade head`", why)
        raise SchemaNotMigrated(why)


def is_undefined_object(exc: BaseException) -> bool:
    """True for PostgreSQL's "relation/column does not exist": the schema is missing."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in _UNDEFINED or type(orig).__name__ in {
        "UndefinedTableError",
        "UndefinedColumnError",
    }


async def undefined_object_problem(request: Request, exc: "ProgrammingError") -> JSONResponse:
    """The app's handler of ProgrammingError: a missing table or column means the database is
    not migrated (yet): 503, like any dependency that cannot serve. Anything else as before."""
    settings = request.app.state.settings
    if is_undefined_object(exc):
        log.warning(
            "database schema missing on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__
        )
        return problem_response(
            Unavailable("The database schema is not migrated yet", settings.retry_after_seconds)
        )
    return problem_response(
        unexpected_problem(exc, request.method, request.url.path, settings.retry_after_seconds)
    )
