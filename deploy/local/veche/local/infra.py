"""PostgreSQL, Redis, NATS and LiveKit for a local run and for the tests: reuse what listens,
start what does not. `make run` and `make test` both come through here."""

import asyncio
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from veche.local.stack import ROOT, bin_path, port_open


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url.replace("+asyncpg", ""))
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _apt_install(package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{package} is not installed; install it or point the URL at a server")
    print(f"installing {package} with apt-get …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def _wait_port(host: str, port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on {host}:{port}")
        time.sleep(0.2)


def _stop(child: "subprocess.Popen[bytes]", timeout: float = 10) -> None:
    """SIGTERM; a second SIGTERM after 2 s (LiveKit drains its rooms on the first and stops at
    once on the second); SIGKILL when it is still there after `timeout`."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(2)
        return
    except subprocess.TimeoutExpired:
        child.terminate()
    try:
        child.wait(max(0.1, timeout - 2))
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class LocalInfra:
    """Starts the missing servers as children and stops them again."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.children: list[subprocess.Popen[bytes]] = []
        self.named: dict[str, subprocess.Popen[bytes]] = {}
        self.pg_data: Path | None = None

    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115
        child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.children.append(child)
        self.named[name] = child

    def stop_child(self, name: str, timeout: float = 10) -> None:
        """Stops one server this object started (SIGTERM, then SIGKILL)."""
        child = self.named.pop(name, None)
        if child is None or child.poll() is not None:
            return
        _stop(child, timeout)

    def nats(self, url: str) -> None:
        if "," in url:
            return  # several servers: a cluster of someone's own, never started here
        host, port = _host_port(url, 4222)
        if port_open(host, port):
            return
        store = self.run_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        print(f"starting nats-server on {host}:{port}", flush=True)
        self._spawn("nats", [bin_path("nats-server"), "-a", host, "-p", str(port), "-js", "-sd", str(store)])
        _wait_port(host, port, "nats-server")

    def redis(self, url: str) -> None:
        host, port = _host_port(url, 6379)
        if port_open(host, port):
            return
        if not shutil.which("redis-server"):
            _apt_install("redis-server")
        print(f"starting redis-server on {host}:{port}", flush=True)
        # With its append-only file (fsync every second) in the run's folder, so chat history,
        # memberships and rate-limit state survive a restart of this Redis.
        data = self.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "redis",
            ["redis-server", "--bind", host, "--port", str(port), "--dir", str(data), "--save", ""]
            + ["--appendonly", "yes", "--appendfsync", "everysec"],
        )
        _wait_port(host, port, "redis-server")

    def postgres(self, url: str) -> None:
        host, port = _host_port(url, 5432)
        if port_open(host, port):
            return
        initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not initdb:
            _apt_install("postgresql")
            initdb = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        bindir = Path(initdb[-1]).parent
        data = self.run_dir / "pgdata"
        runas: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: it runs as the postgres user, from a folder
            # that user can reach even when the checkout sits under /root.
            runas = ["runuser", "-u", "postgres", "--"]
            digest = hashlib.sha1(str(self.run_dir.resolve()).encode()).hexdigest()[:10]
            data = Path("/var/tmp") / f"veche-pgdata-{digest}"
        if not data.exists():
            data.mkdir(parents=True)
            if runas:
                shutil.chown(data, "postgres")
            subprocess.run(
                [*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth", "trust"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        print(f"starting postgres on {host}:{port}", flush=True)
        self._spawn(
            "postgres",
            [*runas, str(bindir / "postgres"), "-D", str(data), "-h", host, "-p", str(port), "-k", "/tmp"],
        )
        _wait_port(host, port, "postgres")

    def livekit(
        self,
        url: str,
        *,
        api_key: str,
        api_secret: str,
        webhook_url: str | None,
        tcp_port: int = 7881,
        udp_ports: tuple[int, int] = (50100, 50199),
        name: str = "livekit",
    ) -> bool:
        """Starts the LiveKit server of `make install` at `url` unless something listens there;
        True when it started one. Only for this host: it listens on 127.0.0.1 alone, offers
        media on 127.0.0.1 alone, knows only the given key pair, creates no room on a join
        (media-token creates them) and sends its webhooks to `webhook_url`."""
        host, port = _host_port(url.replace("ws://", "http://").replace("wss://", "https://"), 7880)
        if port_open(host, port):
            return False
        config = livekit_config(
            port=port,
            api_key=api_key,
            api_secret=api_secret,
            webhook_url=webhook_url,
            tcp_port=tcp_port,
            udp_ports=udp_ports,
        )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / f"{name}.yaml"
        path.write_text(config)
        path.chmod(0o600)  # it holds the API secret
        print(
            f"starting livekit-server on {host}:{port} (media on udp {udp_ports[0]}-{udp_ports[1]})",
            flush=True,
        )
        self._spawn(name, [livekit_binary(), "--config", str(path)])
        _wait_port(host, port, "livekit-server")
        return True

    def stop(self) -> None:
        for child in reversed(self.children):
            _stop(child)
        self.children.clear()
        self.named.clear()


def is_local_livekit(url: str) -> bool:
    """Whether LIVEKIT_URL names this host, where a local run may start LiveKit itself (an
    empty URL turns video off; any other host is someone else's server)."""
    host = urlsplit(url.strip()).hostname
    return host in {"127.0.0.1", "localhost", "::1"}


def livekit_binary() -> str:
    local = ROOT / ".bin" / "livekit-server"
    if local.exists():
        return str(local)
    found = shutil.which("livekit-server")
    if not found:
        raise RuntimeError("livekit-server not found; run `make install` (it builds it with Go)")
    return found


def livekit_config(
    *,
    port: int,
    api_key: str,
    api_secret: str,
    webhook_url: str | None,
    tcp_port: int,
    udp_ports: tuple[int, int],
) -> str:
    """The LiveKit config of a local run (JSON, which LiveKit reads as the YAML it is)."""
    config: dict[str, object] = {
        "port": port,
        "bind_addresses": ["127.0.0.1"],
        "rtc": {
            "tcp_port": tcp_port,
            # Each connected participant holds about two of these.
            "port_range_start": udp_ports[0],
            "port_range_end": udp_ports[1],
            "use_external_ip": False,
            "node_ip": "127.0.0.1",
            # Candidates on loopback only: nothing of a local run is reachable from outside.
            "enable_loopback_candidate": True,
            "ips": {"includes": ["127.0.0.1/32"]},
        },
        "keys": {api_key: api_secret},
        # Only the platform creates LiveKit rooms; a token for any other room is refused.
        "room": {"auto_create": False},
        "logging": {"level": "info", "json": True},
    }
    if webhook_url:
        config["webhook"] = {"api_key": api_key, "urls": [webhook_url]}
    return json.dumps(config, indent=2) + "\n"


async def _create_database(url: str) -> None:
    import asyncpg

    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    parts = urlsplit(plain)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    conn = await asyncpg.connect(admin)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def ensure_database(url: str) -> None:
    asyncio.run(_create_database(url))


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "services/rooms/alembic.ini"), "upgrade", "head"],
        check=True,
        env={**os.environ, "DATABASE_URL": url},
        cwd=ROOT,
    )
