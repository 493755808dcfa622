"""Runs wrk (Debian's wrk 4.1.0) with tests/bench/bench.lua and reads what its done() hook prints.

Closed loop (the default): `connections` connections each send their next request as soon as the
previous answer arrived: the throughput at saturation. Fixed rate (`rate=`): bench.lua paces the
requests with wrk's delay() hook on an open-loop schedule (see the comment at the top of
bench.lua); the latency percentiles are then those at that rate."""

import asyncio
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).with_name("bench.lua")
PREFIX = "WRK_JSON "


class WrkMissing(RuntimeError):
    pass


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing("wrk (the load generator, Debian's package wrk) is missing: apt-get install wrk")
    return found


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int  # connect, read, write errors and timeouts
    late: int  # paced requests that left more than one slot late
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    mean_ms: float
    connections: int = 0
    rate: float | None = None
    # When some answers were not 2xx: one such request made again, "<status> <body…>".
    sample_failure: str | None = None

    @property
    def ok(self) -> int:
        """Requests answered with a 2xx or 3xx (wrk counts the others as "status" errors)."""
        return max(0, self.requests - self.non_2xx)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "rps": round(self.rps, 1), "ok_rps": round(self.ok_rps, 1)}

    def line(self) -> str:
        paced = f" at {self.rate:g}/s" if self.rate else ""
        bad = f"  non-2xx {self.non_2xx}  errors {self.errors}" if self.non_2xx or self.errors else ""
        late = f"  late {self.late}" if self.late else ""
        return (
            f"{self.ok_rps:9.1f} req/s{paced}  p50 {self.p50_ms:6.2f} ms  p99 {self.p99_ms:7.2f} ms"
            f"  ({self.requests} requests, {self.connections} connections){bad}{late}"
        )


def parse_wrk_output(text: str) -> WrkResult:
    """The WRK_JSON line printed by bench.lua's done()."""
    for line in text.splitlines():
        if line.startswith(PREFIX):
            data = json.loads(line[len(PREFIX) :])
            break
    else:
        raise ValueError(f"no {PREFIX.strip()} line in wrk's output:\n{text[-2000:]}")
    return WrkResult(
        requests=int(data["requests"]),
        seconds=data["duration_us"] / 1e6,
        non_2xx=int(data["status"]),
        errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
        late=int(data.get("late", 0)),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        p999_ms=data["p999"] / 1000,
        max_ms=data["lat_max"] / 1000,
        mean_ms=data["lat_mean"] / 1000,
    )


async def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 1,
    method: str = "GET",
    body: str | None = None,
    participant: str | None = None,
    fresh_id: bool = False,
    rooms: list[str] | None = None,
    fill: int = 0,
    rate: float | None = None,
) -> WrkResult:
    """One wrk run against `url` (scheme, host, port and path; "{room}" in the path with `rooms`)."""
    scheme_host, _, path = url.partition("://")[2].partition("/")
    base = url[: url.index("://") + 3] + scheme_host
    env = {
        **os.environ,
        "WRK_METHOD": method,
        "WRK_PATH": "/" + path,
        "WRK_THREADS": str(threads),
        "WRK_SEED": str(random.randrange(1, 2**31)),
    }
    for name, value in (
        ("WRK_BODY", body),
        ("WRK_PARTICIPANT", participant),
        ("WRK_FRESH_ID", "1" if fresh_id else None),
        ("WRK_ROOMS", ",".join(rooms) if rooms else None),
        ("WRK_FILL", str(fill) if fill else None),
        ("WRK_RATE", f"{rate:.3f}" if rate else None),
    ):
        if value is not None:
            env[name] = value
    connections = max(connections, threads)
    cmd = [wrk_path(), "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s"]
    cmd += ["--timeout", "10s", "-s", str(SCRIPT), base + "/"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{text[-2000:]}")
    result = parse_wrk_output(text)
    result.connections = connections
    result.rate = rate
    return result
