"""`make run` on a machine where a server is not listening: it starts its own, then stops it."""

import glob
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from infra import LocalInfra
from stack import free_port, port_open


@pytest.fixture
def infra():
    folder = Path(tempfile.mkdtemp(prefix="veche-infra-"))
    os.chmod(folder, 0o755)
    local = LocalInfra(folder)
    yield local
    local.stop()
    shutil.rmtree(folder, ignore_errors=True)
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    shutil.rmtree(f"/var/tmp/veche-pgdata-{digest}", ignore_errors=True)


def test_a_missing_nats_is_started_from_the_wheel_and_stopped(infra):
    port = free_port()
    infra.nats(f"nats://127.0.0.1:{port}")
    assert port_open("127.0.0.1", port)
    infra.stop()
    assert not port_open("127.0.0.1", port)


@pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server binary here")
def test_a_missing_redis_is_started_and_stopped(infra):
    port = free_port()
    infra.redis(f"redis://127.0.0.1:{port}/0")
    assert port_open("127.0.0.1", port)
    infra.stop()
    assert not port_open("127.0.0.1", port)


@pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb") or os.geteuid() != 0,
    reason="needs PostgreSQL's binaries and root (to run them as the postgres user)",
)
def test_a_missing_postgres_is_initialised_started_and_stopped(infra):
    port = free_port()
    infra.postgres(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/veche")
    assert port_open("127.0.0.1", port)
    infra.stop()
    assert not port_open("127.0.0.1", port)


def test_a_server_already_listening_is_reused_not_started(infra):
    infra.redis("redis://127.0.0.1:6379/0")
    infra.nats("nats://127.0.0.1:4222")
    assert infra.children == []
