"""Starts the veche processes (four services, the web client and the Traefik gateway) on one
host, for `make run` and for the e2e tests. No Docker needed."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from veche.gateway.config import GatewayConfig, render

# The checkout (this package is installed from it, editable, by `make install`).
ROOT = Path(__file__).resolve().parents[4]


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


def uvicorn_cmd(app: str, port: int) -> list[str]:
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
    ]


@dataclass
class Process:
    name: str
    cmd: list[str]
    port: int | None
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None


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
    extra_chat_ports: list[int] = field(default_factory=list)
    # Which of the services to start (the gateway always starts); all by default.
    only: set[str] | None = None
    log_to_files: bool = True
    processes: list[Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _spec(self) -> list[Process]:
        env = {**os.environ, **self.env}
        env.setdefault("ROOMS_INTERNAL_URL", f"http://127.0.0.1:{self.ports['rooms']}")
        env["ROOMS_INTERNAL_URL"] = f"http://127.0.0.1:{self.ports['rooms']}"
        env.setdefault("CORS_ORIGINS", f'["{self.url}"]')
        specs = [
            Process(
                "rooms",
                uvicorn_cmd("veche.rooms.main:create_app", self.ports["rooms"]),
                self.ports["rooms"],
                env,
            ),
            Process(
                "chat", uvicorn_cmd("veche.chat.main:create_app", self.ports["chat"]), self.ports["chat"], env
            ),
        ]
        for i, port in enumerate(self.extra_chat_ports, start=2):
            specs.append(Process(f"chat{i}", uvicorn_cmd("veche.chat.main:create_app", port), port, env))
        specs += [
            Process(
                "media-token",
                uvicorn_cmd("veche.media_token.main:create_app", self.ports["media-token"]),
                self.ports["media-token"],
                env,
            ),
            Process(
                "janitor",
                [sys.executable, "-m", "veche.janitor.main"],
                self.ports["janitor"],
                {**env, "JANITOR_PORT": str(self.ports["janitor"])},
            ),
        ]
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
        cfg.upstreams = {name: [f"http://127.0.0.1:{port}"] for name, port in self.ports.items()}
        cfg.upstreams["chat"] += [f"http://127.0.0.1:{p}" for p in self.extra_chat_ports]
        cfg.trusted_proxies = [p.strip() for p in env.get("TRUSTED_PROXIES", "").split(",") if p.strip()]
        cfg.rate_average = int(env.get("GATEWAY_RATE_AVERAGE", cfg.rate_average))
        cfg.rate_burst = int(env.get("GATEWAY_RATE_BURST", cfg.rate_burst))
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

    def stop_process(self, proc: Process, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
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
