"""Starts the veche processes (four services, the web client and the Traefik gateway) on one
host, for `make run` and for the e2e tests, and keeps them running. No Docker needed.

rooms, chat and media-token may run as several replicas each (`replicas`), behind Traefik's
load balancer; the supervisor restarts a process that dies, with a growing delay."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from veche.chat.wire import UVICORN_FLAGS as CHAT_UVICORN_FLAGS
from veche.gateway.config import GatewayConfig, otlp_traces_endpoint, render

# The checkout (this package is installed from it, editable, by `make install`).
ROOT = Path(__file__).resolve().parents[4]
WEB = ROOT / "web"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def bin_path(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found; run `make install`")
    return found


def web_build_stale() -> bool:
    """Whether web/dist is missing, or older than a source of the client or its build."""
    manifest = WEB / "dist" / "manifest.json"
    if not manifest.is_file():
        return True
    built = manifest.stat().st_mtime
    sources = [WEB / "build.mjs", WEB / "package-lock.json", *(WEB / "static").rglob("*")]
    return any(path.is_file() and path.stat().st_mtime > built for path in sources)


def build_web_client() -> None:
    """web/server.py serves web/dist, which web/build.mjs makes from web/static. `make install`
    builds it; an edit made since (or a build never made) is built here, so `make run` and the
    e2e tests never show a page older than its sources."""
    if not web_build_stale():
        return
    if not (WEB / "node_modules" / "esbuild").is_dir():
        raise RuntimeError("web/dist is missing or stale and esbuild is not installed; run `make install`")
    subprocess.run(["node", "build.mjs"], cwd=WEB, check=True)


def uvicorn_cmd(app: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--timeout-graceful-shutdown",
        "5",
        # WebSocket frames over 16 KiB close the socket with 1009.
        "--ws-max-size",
        "16384",
        *extra,
    ]


# The services that may run as several replicas.
SCALED = ("rooms", "chat", "media-token")
# A process that stays up this long counts as recovered: its restart delay starts over.
STABLE_SECONDS = 60.0
MAX_RESTART_DELAY = 30.0


@dataclass
class Process:
    name: str
    cmd: list[str]
    port: int | None
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    # Set when the stack stops the process on purpose: the supervisor leaves it alone.
    stopped: bool = False
    started_at: float = 0.0
    restarts: int = 0
    restart_at: float | None = None


@dataclass
class Stack:
    run_dir: Path
    env: dict[str, str]
    gateway_port: int = 8080
    ports: dict[str, int] = field(
        default_factory=lambda: {
            "rooms": 8001,
            "chat": 8002,
            "media-token": 8003,
            "janitor": 8004,
            "web": 8005,
        }
    )
    # How many processes of each service in SCALED (1 when not named).
    replicas: dict[str, int] = field(default_factory=dict)
    # The ports of the replicas after the first, per service; base port + 10 × i when not given.
    replica_ports: dict[str, list[int]] = field(default_factory=dict)
    # Which of the services to start (the gateway always starts); all by default.
    only: set[str] | None = None
    log_to_files: bool = True
    processes: list[Process] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def service_ports(self, name: str) -> list[int]:
        """Every port the service listens on, one per replica, the first one's first."""
        count = self.replicas.get(name, 1) if name in SCALED else 1
        extra = list(self.replica_ports.get(name, []))
        extra += [self.ports[name] + 10 * i for i in range(len(extra) + 1, count)]
        return [self.ports[name], *extra[: count - 1]]

    def service_urls(self, name: str) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.service_ports(name)]

    def _spec(self) -> list[Process]:
        env = {**os.environ, **self.env}
        env["ROOMS_INTERNAL_URL"] = ",".join(self.service_urls("rooms"))
        env.setdefault("CORS_ORIGINS", f'["{self.url}"]')
        apps = {
            "rooms": "veche.rooms.main:create_app",
            "chat": "veche.chat.main:create_app",
            "media-token": "veche.media_token.main:create_app",
        }
        specs = []
        for service, app in apps.items():
            for i, port in enumerate(self.service_ports(service), start=1):
                name = service if i == 1 else f"{service}{i}"
                extra = CHAT_UVICORN_FLAGS if service == "chat" else ()
                specs.append(Process(name, uvicorn_cmd(app, port, extra), port, env))
        specs.append(
            Process(
                "janitor",
                [sys.executable, "-m", "veche.janitor.main"],
                self.ports["janitor"],
                {**env, "JANITOR_PORT": str(self.ports["janitor"])},
            )
        )
        if (ROOT / "web" / "server.py").exists():
            specs.append(
                Process(
                    "web",
                    [sys.executable, str(ROOT / "web" / "server.py")],
                    self.ports["web"],
                    {**env, "WEB_PORT": str(self.ports["web"])},
                )
            )
        if self.only is not None:
            specs = [p for p in specs if p.name.rstrip("0123456789") in self.only]
        cfg = GatewayConfig(port=self.gateway_port)
        cfg.upstreams = {name: self.service_urls(name) for name in self.ports}
        cfg.trusted_proxies = [p.strip() for p in env.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
        cfg.rate_average = int(env.get("GATEWAY_RATE_AVERAGE", cfg.rate_average))
        cfg.rate_burst = int(env.get("GATEWAY_RATE_BURST", cfg.rate_burst))
        cfg.otlp_traces_endpoint = otlp_traces_endpoint(env)
        static = render(cfg, self.run_dir / "gateway")
        specs.append(Process("gateway", [bin_path("traefik"), "--configFile", str(static)], None, env))
        return specs

    def start_process(self, proc: Process) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        out = (
            open(self.run_dir / f"{proc.name}.log", "ab")  # noqa: SIM115
            if self.log_to_files
            else None
        )
        proc.stopped = False
        proc.started_at = time.monotonic()
        proc.popen = subprocess.Popen(
            proc.cmd,
            env=proc.env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, timeout: float = 60.0) -> None:
        self.processes = self._spec()
        if any(proc.name == "web" for proc in self.processes):
            build_web_client()
        for proc in self.processes:
            self.start_process(proc)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = [p for p in self.processes if p.port is not None]
        while pending:
            for proc in list(pending):
                if proc.popen is not None and proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.name} exited early: see {self.run_dir}/{proc.name}.log")
                if healthy(f"http://127.0.0.1:{proc.port}/healthz"):
                    pending.remove(proc)
            if time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise RuntimeError(f"not healthy in time: {names} (logs in {self.run_dir})")
            time.sleep(0.1)
        while not healthy(f"{self.url}/_/rooms/healthz"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway not routing in time (logs in {self.run_dir})")
            time.sleep(0.1)

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    # --- supervision ---------------------------------------------------------------------------

    def supervise(self, say: Callable[[str], None] = print) -> None:
        """One round of supervision: schedules a restart of each process that died (after 0.5 s,
        doubling per crash up to 30 s; back to 0.5 s once it stayed up a minute), and starts
        those whose time has come. The others keep serving meanwhile."""
        now = time.monotonic()
        for proc in list(self.processes):
            if proc.stopped or proc.popen is None or proc.popen.poll() is None:
                continue
            if proc.restart_at is None:
                if now - proc.started_at > STABLE_SECONDS:
                    proc.restarts = 0
                delay = min(0.5 * 2**proc.restarts, MAX_RESTART_DELAY)
                proc.restart_at = now + delay
                say(f"{proc.name} exited (code {proc.popen.returncode}); restarting it in {delay:g} s")
            elif now >= proc.restart_at and not self._stopping.is_set():
                proc.restarts += 1
                proc.restart_at = None
                self.start_process(proc)
                say(f"{proc.name} restarted (restart {proc.restarts})")

    def start_supervisor(self, say: Callable[[str], None] = print, interval: float = 0.25) -> None:
        """Supervises in a background thread until stop()."""

        def loop() -> None:
            while not self._stopping.wait(interval):
                self.supervise(say)

        self._supervisor = threading.Thread(target=loop, name="veche-supervisor", daemon=True)
        self._supervisor.start()

    def stop_process(self, proc: Process, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        """Stops a process on purpose: the supervisor does not bring it back."""
        proc.stopped = True
        if proc.popen is None or proc.popen.poll() is not None:
            return
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()

    def stop(self) -> None:
        """SIGTERM to every process at once (each drains on its own), then wait for each."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for proc in self.processes:
            proc.stopped = True
        running = [p for p in self.processes if p.popen is not None and p.popen.poll() is None]
        for proc in running:
            try:
                os.killpg(proc.popen.pid, signal.SIGTERM)  # type: ignore[union-attr]
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for proc in running:
            assert proc.popen is not None
            try:
                proc.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
