"""PostgreSQL, Redis and NATS for a local run: reuse what listens, start what does not."""

import asyncio
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from stack import ROOT, bin_path, port_open


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url.replace("+asyncpg", ""))
    return parts.hostname or "127.0.0.1", parts.port or default_port


def _apt_install(package: str) -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"{package} is not installed; install it or point the URL at a server")
    print(f"installing {package} with apt-get …", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _wait_port(host: str, port: int, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not port_open(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start listening on {host}:{port}")
        time.sleep(0.2)


class LocalInfra:
    """Starts the missing servers as children and stops them again."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.children: list[subprocess.Popen[bytes]] = []
        self.pg_data: Path | None = None

    def _spawn(self, name: str, cmd: list[str]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.run_dir / f"{name}.log", "ab")  # noqa: SIM115
        self.children.append(
            subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def nats(self, url: str) -> None:
        host, port = _host_port(url, 4222)
        if port_open(host, port):
            return
        store = self.run_dir / "nats"
        store.mkdir(parents=True, exist_ok=True)
        print(f"starting nats-server on {host}:{port}", flush=True)
        self._spawn("nats", [bin_path("nats-server"), "-a", host, "-p", str(port), "-js",
                             "-sd", str(store)])
        _wait_port(host, port, "nats-server")

    def redis(self, url: str) -> None:
        host, port = _host_port(url, 6379)
        if port_open(host, port):
            return
        if not shutil.which("redis-server"):
            _apt_install("redis-server")
        print(f"starting redis-server on {host}:{port}", flush=True)
        self._spawn("redis", ["redis-server", "--bind", host, "--port", str(port), "--save", "",
                              "--appendonly", "no"])
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
            subprocess.run([*runas, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
                            "--auth", "trust"], check=True, stdout=subprocess.DEVNULL)
        print(f"starting postgres on {host}:{port}", flush=True)
        self._spawn("postgres", [*runas, str(bindir / "postgres"), "-D", str(data), "-h", host,
                                 "-p", str(port), "-k", "/tmp"])
        _wait_port(host, port, "postgres")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()


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
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "services/rooms/alembic.ini"),
         "upgrade", "head"],
        check=True, env={**os.environ, "DATABASE_URL": url}, cwd=ROOT,
    )
