"""`make run` on a machine where a server is not listening: it starts its own, then stops it."""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from veche.local.infra import LocalInfra, is_local_livekit
from veche.local.stack import ROOT, free_port, port_open


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
    from tests.conftest import BASE_NATS_URL, BASE_REDIS_URL  # this run's, listening by now

    infra.redis(BASE_REDIS_URL)
    infra.nats(BASE_NATS_URL)
    assert infra.children == []


def test_a_missing_livekit_is_started_local_only_without_auto_create_and_stopped(infra):
    port, tcp = free_port(), free_port()
    started = infra.livekit(
        f"ws://127.0.0.1:{port}",
        api_key="k",
        api_secret="s" * 40,
        webhook_url="http://127.0.0.1:9/api/v1/livekit/webhook",
        tcp_port=tcp,
        udp_ports=(47000, 47009),
    )
    assert started and port_open("127.0.0.1", port)
    config = json.loads((infra.run_dir / "livekit.yaml").read_text())
    assert config["bind_addresses"] == ["127.0.0.1"]
    assert config["room"] == {"auto_create": False}
    assert config["keys"] == {"k": "s" * 40}
    assert config["webhook"] == {"api_key": "k", "urls": ["http://127.0.0.1:9/api/v1/livekit/webhook"]}
    assert (config["rtc"]["port_range_start"], config["rtc"]["port_range_end"]) == (47000, 47009)
    assert oct((infra.run_dir / "livekit.yaml").stat().st_mode & 0o777) == "0o600"
    # A second call finds it listening and starts nothing.
    assert not infra.livekit(f"ws://127.0.0.1:{port}", api_key="k", api_secret="s" * 40, webhook_url=None)
    infra.stop()
    assert not port_open("127.0.0.1", port)


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("ws://127.0.0.1:7880", True),
        ("ws://localhost:7880", True),
        ("", False),
        ("wss://meet.example.com", False),
    ],
)
def test_only_a_livekit_url_on_this_host_is_started_locally(url, local):
    assert is_local_livekit(url) is local


INSTALL = ROOT / "deploy" / "local" / "install-livekit.sh"


def test_install_skips_the_build_when_that_version_is_already_there(tmp_path):
    fake = tmp_path / "livekit-server"
    fake.write_text("#!/bin/sh\necho 'livekit-server version 9.9.9'\n")
    fake.chmod(0o755)
    # No go on PATH at all: a build would fail, so success means it was skipped.
    result = subprocess.run(
        ["bash", str(INSTALL), "9.9.9", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "building" not in result.stdout


def test_install_without_go_stops_with_a_message_saying_what_to_install(tmp_path):
    result = subprocess.run(
        ["bash", str(INSTALL), "1.13.5", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
    )
    assert result.returncode != 0
    assert "Go is needed" in result.stderr and "Install Go 1.26" in result.stderr
    assert not (tmp_path / "livekit-server").exists()


def test_make_install_built_the_pinned_livekit_version():
    pinned = next(
        line.split(":=")[1].strip()
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.startswith("LIVEKIT_VERSION")
    )
    out = subprocess.run(
        [str(ROOT / ".bin" / "livekit-server"), "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    assert out.strip() == f"livekit-server version {pinned}"
