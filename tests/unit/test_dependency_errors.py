"""Which errors mean "a dependency cannot serve right now" (a 503), and which are bugs (a 500):
PostgreSQL refusing connections while it shuts down or starts up is the former, however the
driver and SQLAlchemy wrap it."""

import asyncpg
import pytest
import sqlalchemy.exc

from veche.common.errors import is_dependency_error


@pytest.mark.parametrize(
    "driver_error",
    [
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.exceptions.ConnectionFailureError("connection failure"),
    ],
)
def test_a_postgresql_that_cannot_serve_is_a_dependency_outage(driver_error):
    assert is_dependency_error(driver_error)
    wrapped = sqlalchemy.exc.DBAPIError("SELECT 1", {}, driver_error)
    assert is_dependency_error(wrapped)
    try:
        raise wrapped from driver_error
    except sqlalchemy.exc.DBAPIError as raised:
        assert is_dependency_error(raised)


@pytest.mark.parametrize(
    "driver_error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.SyntaxOrAccessError("syntax error"),
        ValueError("a bug"),
    ],
)
def test_a_query_error_is_no_outage(driver_error):
    assert not is_dependency_error(sqlalchemy.exc.DBAPIError("SELECT 1", {}, driver_error))
