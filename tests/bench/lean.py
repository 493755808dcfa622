"""The lean wire code of `make bench`: WebSocket frames, RESP (Redis) replies, a keep-alive HTTP/1.1
client, and the marker that a bench message carries.

Why not the websockets or redis client libraries: the fan-out bench reads up to some 40,000
frames a second on 100 sockets in one Python process, and a full client library spends most of
that on work the bench does not need (per-frame objects, UTF-8 decoding and JSON parsing of every
frame, per-message futures and queues). The receivers would then be the bottleneck and the
bench would measure them instead of the chat process. These parsers only cut frames out of a
buffer and pull the few bytes they need (the marker, the message id) with `bytes.find`.

The pure functions here (no sockets) are covered by tests/unit/test_bench.py."""

import asyncio
import base64
import os
import time
from collections.abc import Coroutine
from typing import Any

# --- the bench marker ------------------------------------------------------------------------
#
# Every message of the fan-out bench (chat content, or a Redis payload of the floor) starts with
# "b:<step>:<seq>:<send_ns>:" followed by padding: the step it belongs to, its sequence number in
# the step, and the sender's CLOCK_MONOTONIC time in ns when the request left (the same clock in
# every process of the machine, so a receiver in another process can compute the latency).

MARKER = b"b:"
CONTENT_KEY = b'"content":"'
ID_KEY = b'"id":"'


def make_marker(step: int, seq: int, send_ns: int, size: int = 0) -> str:
    """The marker of one message, padded with "x" to `size` characters (when longer than it)."""
    text = f"b:{step}:{seq}:{send_ns}:"
    return text + "x" * max(0, size - len(text))


def parse_marker(content: bytes) -> tuple[int, int, int] | None:
    """(step, seq, send_ns) of a marker, or None when `content` is no bench message."""
    if not content.startswith(MARKER):
        return None
    parts = content.split(b":", 4)
    if len(parts) < 5:
        return None
    try:
        return int(parts[1]), int(parts[2]), int(parts[3])
    except ValueError:
        return None


def frame_marker(payload: bytes) -> tuple[int, int, int] | None:
    """The marker in the `content` of a chat frame (message.created), without parsing the JSON."""
    i = payload.find(CONTENT_KEY)
    if i < 0:
        return None
    start = i + len(CONTENT_KEY)
    end = payload.find(b'"', start)
    return parse_marker(payload[start:end]) if end > 0 else None


def frame_message_id(payload: bytes) -> bytes | None:
    """The message id of a message.created frame: the value of its only key named exactly "id"
    (room_id and sender_id are preceded by a letter, not a quote). UUIDv7 in canonical form, so
    comparing the bytes compares the ids' order."""
    i = payload.find(ID_KEY)
    if i < 0:
        return None
    start = i + len(ID_KEY)
    return payload[start : start + 36]


# --- WebSocket (RFC 6455) --------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def parse_ws_frames(buf: bytes | bytearray, start: int = 0) -> tuple[list[tuple[bool, int, bytes]], int]:
    """Cuts the complete frames out of `buf` from `start`: ([(fin, opcode, payload)], the offset of
    the first byte not consumed). A frame that has not arrived whole stays in the buffer. Server
    frames are unmasked; a masked one (a client's) is unmasked too."""
    frames: list[tuple[bool, int, bytes]] = []
    pos, size = start, len(buf)
    while size - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        head = 2
        if length == 126:
            if size - pos < 4:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
            head = 4
        elif length == 127:
            if size - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
            head = 10
        masked = b1 & 0x80
        if masked:
            head += 4
        if size - pos < head + length:
            break
        payload = bytes(buf[pos + head : pos + head + length])
        if masked:
            payload = _mask(payload, bytes(buf[pos + head - 4 : pos + head]))
        frames.append((bool(b0 & 0x80), b0 & 0x0F, payload))
        pos += head + length
    return frames, pos


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def ws_client_frame(opcode: int, payload: bytes = b"", mask_key: bytes | None = None) -> bytes:
    """One final client frame (clients must mask, RFC 6455 5.3)."""
    key = mask_key if mask_key is not None else os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return head + key + _mask(payload, key)


def ws_upgrade_request(host: str, port: int, path: str, headers: dict[str, str]) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def close_code(payload: bytes) -> int | None:
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None


# --- RESP (Redis serialization protocol, version 2) ------------------------------------------


class RespError(Exception):
    """A `-ERR ...` reply."""


class _Incomplete(Exception):
    pass


def parse_resp(buf: bytes | bytearray, start: int = 0) -> tuple[list[Any], int]:
    """The complete RESP2 values in `buf` from `start`: ([value], the offset of the first byte not
    consumed). Bulk strings are bytes (None for a null one), integers int, simple strings str,
    errors RespError, arrays lists. A value that has not arrived whole stays in the buffer."""
    values: list[Any] = []
    pos = start
    while pos < len(buf):
        try:
            value, pos2 = _resp_value(buf, pos)
        except _Incomplete:
            break
        values.append(value)
        pos = pos2
    return values, pos


def _resp_value(buf: bytes | bytearray, pos: int) -> tuple[Any, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos : pos + 1], bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, pos
        if len(buf) < pos + length + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + length]), pos + length + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _resp_value(buf, pos)
            items.append(item)
        return items, pos
    if kind == b":":
        return int(line), pos
    if kind == b"+":
        return line.decode(), pos
    if kind == b"-":
        return RespError(line.decode()), pos
    raise ValueError(f"not RESP: {bytes(buf[pos - len(line) - 3 : pos])!r}")


def resp_command(*args: str | bytes) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


# --- a keep-alive HTTP/1.1 client ------------------------------------------------------------


class HttpConn:
    """One keep-alive connection, one request at a time; bodies by Content-Length (what the
    services send). Lean: the fan-out bench posts hundreds of messages a second with it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> "HttpConn":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        """Writes the request at once (no await before the write), then reads the answer."""
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None and self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body or method in ("POST", "PUT", "PATCH"):
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status, length, chunked = parse_response_head(raw)
        if chunked:
            raise RuntimeError(f"{method} {path}: a chunked answer (not supported here)")
        data = await self.reader.readexactly(length) if length else b""
        return status, data


def parse_response_head(raw: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, chunked) of an HTTP/1.1 response head."""
    lines = raw.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    return status, length, chunked


def now_ns() -> int:
    """CLOCK_MONOTONIC in ns: one clock for every process of the machine."""
    return time.monotonic_ns()


def run_fast(main: Coroutine[Any, Any, Any]) -> Any:
    """asyncio.run on uvloop when it is installed (it is: uvicorn's extra), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
