"""A NATS cluster on this host: `size` nats-server processes on 127.0.0.1, routed to each other,
each with JetStream and a store of its own. For the tests that lose a NATS node
(tests/cluster/) and for trying the services against a cluster by hand:

    python -m veche.local.nats_cluster [--size 3] [--dir .run/nats-cluster]

prints the NATS_URL of the cluster (its servers, comma-separated) and runs until Ctrl-C."""

import argparse
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from veche.local.infra import _stop, _wait_port
from veche.local.stack import ROOT, bin_path, free_port

HOST = "127.0.0.1"
CLUSTER_NAME = "veche"


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class NatsCluster:
    """Starts, kills, restarts and stops the nodes; node i is `names[i]` (n1, n2, …) on
    `client_ports[i]`, its routes on `cluster_ports[i]`, its monitoring on `http_ports[i]`.
    The ports and stores stay the same across a restart, as a node of a real cluster would."""

    def __init__(self, run_dir: Path, size: int = 3) -> None:
        if size < 1:
            raise ValueError("a cluster has at least one node")
        self.run_dir = run_dir
        self.size = size
        self.names = [f"n{i + 1}" for i in range(size)]
        ports = _free_ports(3 * size)
        self.client_ports = ports[:size]
        self.cluster_ports = ports[size : 2 * size]
        self.http_ports = ports[2 * size :]
        self.children: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        """The client URLs of every node."""
        return [f"nats://{HOST}:{port}" for port in self.client_ports]

    @property
    def url(self) -> str:
        """NATS_URL of the cluster: every node, comma-separated."""
        return ",".join(self.urls)

    def index_of(self, name: str) -> int:
        """The node of a server name (e.g. a stream's leader in stream_info().cluster.leader)."""
        return self.names.index(name)

    def index_of_port(self, port: int) -> int:
        """The node listening for clients on `port` (e.g. of a client's connected_url)."""
        return self.client_ports.index(port)

    def _command(self, i: int) -> list[str]:
        routes = ",".join(f"nats://{HOST}:{port}" for j, port in enumerate(self.cluster_ports) if j != i)
        store = self.run_dir / self.names[i]
        store.mkdir(parents=True, exist_ok=True)
        command = [
            bin_path("nats-server"),
            "-a",
            HOST,
            "-p",
            str(self.client_ports[i]),
            "-m",
            str(self.http_ports[i]),
            "-n",
            self.names[i],
            "-js",
            "-sd",
            str(store),
            "--cluster_name",
            CLUSTER_NAME,
            "--cluster",
            f"nats://{HOST}:{self.cluster_ports[i]}",
        ]
        if routes:
            command += ["--routes", routes]
        return command

    def _spawn(self, i: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / f"{self.names[i]}.log", "ab") as log:
            self.children[i] = subprocess.Popen(
                self._command(i), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def start(self, timeout: float = 30) -> "NatsCluster":
        """Starts every node; returns once each listens and JetStream is ready on each (a meta
        leader elected and known to every node), or raises after `timeout` seconds."""
        try:
            for i in range(self.size):
                self._spawn(i)
            deadline = time.monotonic() + timeout
            for i in range(self.size):
                self._wait_ready(i, deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self, i: int) -> None:
        """Kills node i at once (SIGKILL): no goodbye to its routes or clients."""
        child = self.children[i]
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait()

    def restart(self, i: int, timeout: float = 30) -> None:
        """Starts node i again, with its ports and store, and waits until it is ready."""
        self.kill(i)
        self._spawn(i)
        try:
            self._wait_ready(i, time.monotonic() + timeout)
        except BaseException:
            self.kill(i)
            raise

    def stop(self) -> None:
        for child in self.children:
            if child is not None:
                _stop(child)

    def running(self, i: int) -> bool:
        child = self.children[i]
        return child is not None and child.poll() is None

    def _wait_ready(self, i: int, deadline: float) -> None:
        """Waits until node i listens and its /healthz says JetStream is healthy: it is in touch
        with the meta leader and current with the cluster's state."""
        name, child = self.names[i], self.children[i]
        assert child is not None
        _wait_port(
            HOST, self.client_ports[i], f"nats-server {name}", timeout=max(0.1, deadline - time.monotonic())
        )
        last = "no answer"
        while time.monotonic() < deadline:
            if child.poll() is not None:
                raise RuntimeError(f"nats-server {name} exited ({child.returncode}); see {self._log(i)}")
            healthy, last = self._health(i)
            if healthy:
                return
            time.sleep(0.2)
        raise RuntimeError(
            f"nats-server {name}: JetStream not ready in time (last /healthz: {last}); see {self._log(i)}"
        )

    def _health(self, i: int) -> tuple[bool, str]:
        url = f"http://{HOST}:{self.http_ports[i]}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                return response.status == 200, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return False, exc.read().decode(errors="replace")
        except OSError as exc:
            return False, type(exc).__name__

    def _log(self, i: int) -> Path:
        return self.run_dir / f"{self.names[i]}.log"


def main() -> None:
    parser = argparse.ArgumentParser(description="A local NATS cluster with JetStream.")
    parser.add_argument("--size", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=ROOT / ".run" / "nats-cluster", help="logs and stores")
    args = parser.parse_args()
    # Ctrl-C and SIGTERM wait for sigwait below, so the nodes are always stopped.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    cluster = NatsCluster(args.dir, args.size).start()
    try:
        print(f"NATS_URL={cluster.url}", flush=True)
        print(f"logs and stores in {args.dir}; Ctrl-C stops the cluster", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
