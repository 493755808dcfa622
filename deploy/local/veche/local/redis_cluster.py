"""A Redis Cluster on loopback, made of plain redis-server processes: three masters with a
replica each by default. The cluster tests run the platform on it, kill masters and bring them
back; anyone may start one by hand to try REDIS_CLUSTER_URL:

    python -m veche.local.redis_cluster      # prints the seeds, Ctrl-C stops it
"""

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from veche.local.stack import free_port, port_open

HOST = "127.0.0.1"


def _free_node_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535 or port in taken or port + 10000 in taken:
            continue
        if not port_open(HOST, port + 10000, timeout=0.1) and _bindable(port + 10000):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class _Node:
    port: int
    data: Path
    popen: "subprocess.Popen[bytes] | None" = None


class RedisCluster:
    """`masters` masters and `replicas` replicas of each, on free ports. A short node timeout
    (1 s) makes a replica take over within a few seconds of its master's death."""

    def __init__(self, run_dir: Path, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000):
        if not shutil.which("redis-server") or not shutil.which("redis-cli"):
            raise RuntimeError("redis-server and redis-cli are needed (Debian: redis-server)")
        self.run_dir = run_dir
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[_Node] = []
        while len(self.nodes) < masters * (1 + replicas):
            port = _free_node_port({n.port for n in self.nodes})
            self.nodes.append(_Node(port, run_dir / f"node-{port}"))

    @property
    def seeds(self) -> list[str]:
        return [f"redis://{HOST}:{node.port}" for node in self.nodes]

    @property
    def url(self) -> str:
        """REDIS_CLUSTER_URL: every node, comma-separated."""
        return ",".join(self.seeds)

    def _spawn(self, node: _Node) -> None:
        node.data.mkdir(parents=True, exist_ok=True)
        log = open(self.run_dir / f"redis-{node.port}.log", "ab")  # noqa: SIM115
        node.popen = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                HOST,
                "--port",
                str(node.port),
                "--dir",
                str(node.data),
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                # A replica takes over however long ago it last heard its master (the default
                # refuses when that is over 10 node timeouts: a second or two here).
                "--cluster-replica-validity-factor",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_listening(self, node: _Node, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not port_open(HOST, node.port):
            if node.popen is not None and node.popen.poll() is not None:
                raise RuntimeError(f"redis-server on {node.port} exited: see {self.run_dir}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {node.port} did not listen")
            time.sleep(0.05)

    def cli(self, port: int, *args: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout

    def start(self, timeout: float = 60) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self._wait_listening(node)
        created = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"{HOST}:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
        self.wait_healthy(timeout)

    def alive(self) -> list[_Node]:
        return [n for n in self.nodes if n.popen is not None and n.popen.poll() is None]

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until every live node says the cluster is ok and sees `masters` masters with a
        live replica each (so the next failover has a candidate)."""
        deadline = time.monotonic() + timeout
        while True:
            if all(self._node_ok(node) for node in self.alive()) and self._shards_complete():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster not healthy in {timeout:.0f} s (logs in {self.run_dir})")
            time.sleep(0.2)

    def _node_ok(self, node: _Node) -> bool:
        return "cluster_state:ok" in self.cli(node.port, "cluster", "info")

    def _shards_complete(self) -> bool:
        """Every master with the expected number of connected replicas."""
        lines = self.cli(self.alive()[0].port, "cluster", "nodes").splitlines()
        masters = {}
        replicas: dict[str, int] = {}
        for line in lines:
            parts = line.split()
            if len(parts) < 8 or "fail" in parts[2] or parts[7] != "connected":
                continue
            if "master" in parts[2] and len(parts) > 8:
                masters[parts[0]] = True
            elif "slave" in parts[2]:
                replicas[parts[3]] = replicas.get(parts[3], 0) + 1
        return len(masters) == self.masters and all(replicas.get(m, 0) >= self.replicas for m in masters)

    def master_of(self, key: str) -> int:
        """The port of the master that owns `key`'s slot now."""
        node = self.alive()[0]
        slot = int(self.cli(node.port, "cluster", "keyslot", key).strip())
        for line in self.cli(node.port, "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
                continue
            for spec in parts[8:]:
                if spec.startswith("["):
                    continue  # a slot being migrated
                first, _, last = spec.partition("-")
                if int(first) <= slot <= int(last or first):
                    return int(parts[1].split(":")[1].split("@")[0])
        raise RuntimeError(f"no master owns slot {slot}")

    def describe(self) -> str:
        """CLUSTER NODES as a live node sees it (for failure messages)."""
        alive = self.alive()
        return self.cli(alive[0].port, "cluster", "nodes") if alive else "no node alive"

    def node(self, port: int) -> _Node:
        return next(n for n in self.nodes if n.port == port)

    def kill(self, port: int) -> None:
        """SIGKILL: a crash, nothing flushed."""
        popen = self.node(port).popen
        if popen is not None and popen.poll() is None:
            popen.send_signal(signal.SIGKILL)
            popen.wait()

    def restart(self, port: int) -> None:
        """Starts a killed node again with its nodes.conf: it rejoins (as a replica when its
        slots went to another node meanwhile)."""
        node = self.node(port)
        self._spawn(node)
        self._wait_listening(node)

    def stop(self) -> None:
        for node in self.nodes:
            if node.popen is not None and node.popen.poll() is None:
                node.popen.terminate()
        for node in self.nodes:
            if node.popen is not None:
                try:
                    node.popen.wait(5)
                except subprocess.TimeoutExpired:
                    node.popen.kill()
                    node.popen.wait()


def main() -> None:
    import tempfile

    cluster = RedisCluster(Path(tempfile.mkdtemp(prefix="veche-redis-cluster-")))
    cluster.start()
    print(f"Redis Cluster up; REDIS_CLUSTER_URL={cluster.url}\nlogs in {cluster.run_dir}; Ctrl-C stops it.")
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    cluster.stop()


if __name__ == "__main__":
    main()
