"""Tests on clusters of their own: NATS (three nodes with routes) and Redis Cluster (three
masters, three replicas), started on loopback for the test and gone after it."""

from collections.abc import Iterator

import pytest


@pytest.fixture
def own_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of this test's own, so only this test's rooms relay publishes its outbox."""
    from tests.conftest import RUN_ID, create_migrated_database, drop_database

    name = f"veche_test_{RUN_ID}_{request.node.name[:20].lower()}"
    yield create_migrated_database(name)
    drop_database(name)
