"""The receiving side of the fan-out bench, in a process of its own (so that it has a core of its
own and never shares an event loop with the poster): chat WebSockets or Redis subscribers, read
by the lean raw protocols of tests/bench/lean.py (see why there).

    python -m tests.bench.receivers

Commands come as JSON lines on stdin; each gets one JSON line on stdout:

    {"cmd": "ws", "host", "port", "sockets": [[room_id, participant_id], ...]}
        opens every socket at once (X-Participant-ID on the upgrade) and waits for each `ready`
        frame: {"opened", "failed", "ready_ms": [per socket, from the common start], "total_ms"}
    {"cmd": "redis", "host", "port", "channel", "count"}
        opens `count` subscribers of `channel`: {"opened", "failed"}
    {"cmd": "start", "kind": "ws"|"redis", "step": n}
        from now on counts the bench messages of step n on the sockets of that kind
    {"cmd": "wait", "expected": [seq, ...], "timeout": s}
        waits until every receiver has every expected message (or the timeout), then reports
        the step: latency percentiles, frames, lost, out of order, closed sockets, CPU
    {"cmd": "close", "kind": "ws"|"redis"}
    {"cmd": "exit"}

Out of order: on a chat socket, a message.created whose message id (UUIDv7, in the order the
messages were stored) is below the previous one's; on a subscriber, a seq below the previous
one's (the floor's publisher writes in seq order on one connection)."""

import asyncio
import json
import resource
import sys
import time
from typing import Any

from tests.bench.lean import (
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    close_code,
    frame_marker,
    frame_message_id,
    now_ns,
    parse_marker,
    parse_resp,
    parse_ws_frames,
    resp_command,
    run_fast,
    ws_client_frame,
    ws_upgrade_request,
)


class Step:
    """What the receivers of one kind count during one step."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.latencies_ns: list[int] = []
        self.frame_bytes = 0
        self.frames = 0
        self.other_steps = 0


class Receiver(asyncio.Protocol):
    step: Step | None = None

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.seqs: set[int] = set()
        self.out_of_order = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def reset(self) -> None:
        self.seqs = set()
        self.out_of_order = 0

    def count(self, marker: tuple[int, int, int], size: int, received_ns: int) -> bool:
        step = self.step
        if step is None:
            return False
        if marker[0] != step.step:
            step.other_steps += 1
            return False
        step.latencies_ns.append(received_ns - marker[2])
        step.frames += 1
        step.frame_bytes += size
        self.seqs.add(marker[1])
        return True

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class WsReceiver(Receiver):
    """A chat socket: upgrade, then unmasked server frames; answers pings (uvicorn pings every
    20 s and drops a socket that does not answer)."""

    def __init__(self, request: bytes) -> None:
        super().__init__()
        self.request = request
        self.upgraded = False
        self.ready = asyncio.get_running_loop().create_future()
        self.partial: bytearray | None = None
        self.last_id = b""

    def reset(self) -> None:
        super().reset()
        self.last_id = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before ready ({self.close_code})"))
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        received_ns = now_ns()
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            if b" 101 " not in status:
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(status.decode(errors="replace")))
                self.close()
                return
            self.upgraded = True
            del self.buf[: end + 4]
        frames, used = parse_ws_frames(self.buf)
        if used:
            del self.buf[:used]
        for fin, opcode, payload in frames:
            if opcode == OP_CONT and self.partial is not None:
                self.partial += payload
                if fin:
                    payload, self.partial = bytes(self.partial), None
                    self.text(payload, received_ns)
            elif opcode == OP_TEXT:
                if fin:
                    self.text(payload, received_ns)
                else:
                    self.partial = bytearray(payload)
            elif opcode == OP_PING:
                self.transport.write(ws_client_frame(OP_PONG, payload))  # type: ignore[union-attr]
            elif opcode == OP_CLOSE:
                self.close_code = close_code(payload)
                self.transport.write(ws_client_frame(OP_CLOSE, payload[:2]))  # type: ignore[union-attr]
                self.close()

    def text(self, payload: bytes, received_ns: int) -> None:
        marker = frame_marker(payload)
        if marker is None:
            if not self.ready.done() and b'"type":"ready"' in payload[:64]:
                self.ready.set_result(received_ns)
            return
        if self.count(marker, len(payload), received_ns):
            message_id = frame_message_id(payload) or b""
            if message_id < self.last_id:
                self.out_of_order += 1
            else:
                self.last_id = message_id


class RedisReceiver(Receiver):
    """A SUBSCRIBE connection: RESP push messages ["message", channel, payload]."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel
        self.subscribed = asyncio.get_running_loop().create_future()
        self.last_seq = -1

    def reset(self) -> None:
        super().reset()
        self.last_seq = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport.write(resp_command("SUBSCRIBE", self.channel))  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("closed before subscribed"))
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        received_ns = now_ns()
        self.buf += data
        values, used = parse_resp(self.buf)
        if used:
            del self.buf[:used]
        for value in values:
            if not isinstance(value, list) or len(value) != 3:
                continue
            kind = value[0]
            if kind == b"message":
                payload = value[2]
                marker = parse_marker(payload)
                if marker is not None and self.count(marker, len(payload), received_ns):
                    if marker[1] < self.last_seq:
                        self.out_of_order += 1
                    else:
                        self.last_seq = marker[1]
            elif kind == b"subscribe" and not self.subscribed.done():
                self.subscribed.set_result(True)


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0–100) of sorted values, nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


class Receivers:
    def __init__(self) -> None:
        self.pools: dict[str, list[Receiver]] = {"ws": [], "redis": []}
        self.active: str | None = None
        self.step: Step | None = None
        self.cpu_at_start = 0.0
        self.started_at = 0.0

    async def ws(self, host: str, port: int, sockets: list[list[str]]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        started = now_ns()

        async def one(room_id: str, participant_id: str) -> tuple[WsReceiver, int]:
            headers = {"X-Participant-ID": participant_id}
            request = ws_upgrade_request(host, port, f"/ws/chat/{room_id}", headers)
            _, proto = await loop.create_connection(lambda: WsReceiver(request), host, port)
            return proto, await asyncio.wait_for(proto.ready, 60)

        results = await asyncio.gather(*(one(r, p) for r, p in sockets), return_exceptions=True)
        ready_ms, errors = [], []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(repr(result))
                continue
            proto, ready_ns = result
            self.pools["ws"].append(proto)
            ready_ms.append((ready_ns - started) / 1e6)
        ready_ms.sort()
        return {
            "opened": len(ready_ms),
            "failed": len(errors),
            "errors": errors[:5],
            "ready_ms": ready_ms,
            "total_ms": (now_ns() - started) / 1e6,
        }

    async def redis(self, host: str, port: int, channel: str, count: int) -> dict[str, Any]:
        loop = asyncio.get_running_loop()

        async def one() -> RedisReceiver:
            _, proto = await loop.create_connection(lambda: RedisReceiver(channel), host, port)
            await asyncio.wait_for(proto.subscribed, 30)
            return proto

        results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
        opened = [r for r in results if isinstance(r, RedisReceiver)]
        self.pools["redis"].extend(opened)
        errors = [repr(r) for r in results if isinstance(r, BaseException)]
        return {"opened": len(opened), "failed": len(errors), "errors": errors[:5]}

    def start(self, kind: str, step: int) -> dict[str, Any]:
        self.active = kind
        self.step = Step(step)
        for pool in self.pools.values():
            for receiver in pool:
                receiver.step = self.step if pool is self.pools[kind] else None
                receiver.reset()
        self.cpu_at_start = _cpu_seconds()
        self.started_at = time.monotonic()
        return {"started": step}

    async def wait(self, expected: list[int], timeout: float) -> dict[str, Any]:
        assert self.active is not None and self.step is not None
        pool = self.pools[self.active]
        want = set(expected)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(len(r.seqs) >= len(want) for r in pool if not r.closed.done()):
                break
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - self.started_at
        cpu = _cpu_seconds() - self.cpu_at_start
        step = self.step
        lost = sum(len(want - r.seqs) for r in pool)
        latencies = sorted(ns / 1e6 for ns in step.latencies_ns)
        for receiver in pool:
            receiver.step = None
        self.step = None
        return {
            "receivers": len(pool),
            "closed": sum(1 for r in pool if r.closed.done()),
            "close_codes": sorted({r.close_code for r in pool if r.close_code is not None}),
            "frames": step.frames,
            "expected_frames": len(want) * len(pool),
            "lost": lost,
            "out_of_order": sum(r.out_of_order for r in pool),
            "late_from_other_steps": step.other_steps,
            "frame_bytes_mean": step.frame_bytes / step.frames if step.frames else 0,
            "p50_ms": percentile(latencies, 50),
            "p90_ms": percentile(latencies, 90),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "receiver_cpu_share": cpu / elapsed if elapsed else 0.0,
        }

    async def close(self, kind: str) -> dict[str, Any]:
        pool = self.pools[kind]
        for receiver in pool:
            receiver.close()
        if pool:
            await asyncio.wait([asyncio.ensure_future(r.closed) for r in pool], timeout=5)
        self.pools[kind] = []
        return {"closed": len(pool)}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    receivers = Receivers()
    while line := await reader.readline():
        command = json.loads(line)
        name = command.pop("cmd")
        try:
            if name == "exit":
                break
            elif name == "ws":
                reply = await receivers.ws(**command)
            elif name == "redis":
                reply = await receivers.redis(**command)
            elif name == "start":
                reply = receivers.start(**command)
            elif name == "wait":
                reply = await receivers.wait(**command)
            elif name == "close":
                reply = await receivers.close(**command)
            else:
                reply = {"error": f"unknown command {name}"}
        except Exception as exc:  # reported to the bench, which says what failed
            reply = {"error": repr(exc)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for kind in list(receivers.pools):
        await receivers.close(kind)


if __name__ == "__main__":
    run_fast(serve())
