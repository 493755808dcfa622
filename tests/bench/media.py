"""Media figures of `make bench`, on the stack's own LiveKit server: the time from connecting to
the first decoded frame of another member (each join a new member of a new room, through the
platform's API, as a browser does), and the SFU's CPU per subscribed video track."""

import asyncio
import os
import statistics
import time
from collections.abc import Callable

import httpx

from tests.e2e.support.sfu import Member

JOINS = int(os.environ.get("BENCH_MEDIA_JOINS", "10"))
SUBSCRIBERS = int(os.environ.get("BENCH_MEDIA_SUBSCRIBERS", "6"))
WINDOW_SECONDS = float(os.environ.get("BENCH_MEDIA_WINDOW_SECONDS", "8"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def first_frame_times(client: httpx.AsyncClient) -> list[float]:
    times = []
    for _ in range(JOINS):
        host = await Member.create_room(client, "Host")
        await host.connect()
        await host.publish_camera()
        guest = await host.invite("Guest")
        try:
            started = time.monotonic()
            await guest.connect()
            await guest.frames_from(host, count=1, timeout=20)
            times.append(guest.first_frame_at[host.public_id] - started)
        finally:
            await guest.close()
            await host.close()
    return times


async def sfu_cpu(client: httpx.AsyncClient, livekit_pid: int) -> tuple[float, float]:
    """(CPU share of one core with a publisher alone, extra share per subscribed video track)."""
    publisher = await Member.create_room(client, "Presenter", max_participants=SUBSCRIBERS + 1)
    await publisher.connect()
    await publisher.publish_camera(640, 360)
    members: list[Member] = []
    try:
        await asyncio.sleep(2)
        alone = await _share(livekit_pid)
        for n in range(SUBSCRIBERS):
            member = await publisher.invite(f"Viewer {n}")
            await member.connect()
            members.append(member)
        for member in members:
            await member.frames_from(publisher, count=10, timeout=30)
        loaded = await _share(livekit_pid)
        return alone, max(0.0, loaded - alone) / SUBSCRIBERS
    finally:
        for member in members:
            await member.close()
        await publisher.close()


async def _share(pid: int) -> float:
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(WINDOW_SECONDS)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started)


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def bench_media(url: str, livekit_pid: int, say: Callable[[str], None] = print) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        times = await first_frame_times(client)
        alone, per_track = await sfu_cpu(client, livekit_pid)
    result = {
        "first_frame_p50_ms": quantile(times, 50) * 1000,
        "first_frame_p95_ms": quantile(times, 95) * 1000,
        "sfu_cpu_publisher_alone_pct": alone * 100,
        "sfu_cpu_per_subscribed_video_track_pct": per_track * 100,
    }
    say(
        f"{'connect → first frame':<34} p50 {result['first_frame_p50_ms']:6.0f} ms   "
        f"p95 {result['first_frame_p95_ms']:6.0f} ms   over {len(times)} joins"
    )
    say(
        f"{'SFU CPU':<34} {result['sfu_cpu_publisher_alone_pct']:5.1f} % of a core with one "
        f"640x360@30 publisher, +{result['sfu_cpu_per_subscribed_video_track_pct']:4.2f} % per "
        f"subscribed video track ({SUBSCRIBERS} subscribers)"
    )
    return result
