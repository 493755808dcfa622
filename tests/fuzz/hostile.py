"""Hostile payloads against every body field and every WebSocket frame of the API, through the
gateway: lone surrogates, NUL, bidi and zero-width characters, tag characters, deep nesting,
huge numbers, invalid UTF-8, non-objects. Every answer must be a 4xx problem+json (never a 5xx,
never a dropped connection), a socket may only answer with an error frame or close 4400/1009,
and the service must go on serving others. Used by `make fuzz` and by the test suite."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import websockets

# Raw JSON string literals (already escaped as JSON would carry them).
HOSTILE_STRINGS = [
    '"\\ud800"',
    '"a\\udfffb"',
    '"\\u0000"',
    '"x\\u0000y"',
    '"\\u202eevil"',
    '"\\u200b"',
    '"\\u200b\\u200c\\u200d\\u2060"',
    '"\\udb40\\udc41\\udb40\\udc42"',
    '"\\u001b[31m"',
    '"\\u0007"',
    '"\\u2028"',
    '"\\ufeff"',
    '"   "',
    '""',
    '"' + "x" * 70000 + '"',
    "null",
    "12",
    "true",
    "[]",
    "{}",
]
HOSTILE_BODIES: list[bytes] = [
    b"\xff\xfe\xfd",  # not UTF-8
    b'{"a": "\xc3\x28"}',  # invalid UTF-8 inside a string
    b"[" * 20000 + b"]" * 20000,  # nesting past the parser (still under 64 KiB)
    b'{"n": ' + b"9" * 5000 + b"}",  # an integer of 5000 digits
    b'{"n": 1e999999}',
    b"[]",
    b'"text"',
    b"null",
    b"",
    b"{",
]
HOSTILE_FRAMES: list[str] = [
    '{"type": "message.send", "content": ' + s + ', "client_msg_id": "f"}' for s in HOSTILE_STRINGS[:14]
] + [
    "[" * 8000 + "]" * 8000,
    '{"type": "message.send", "content": "x", "n": ' + "9" * 5000 + "}",
    '{"type": ' + "[" * 5000 + "]" * 5000 + "}",
    "not json",
    "[]",
    '{"type": "nope"}',
    "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
]


def _problem(response: httpx.Response) -> str | None:
    """What is wrong with this answer to a hostile request, or None."""
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:200]}"
    if response.status_code >= 400 and response.headers.get("content-type") != "application/problem+json":
        return f"{response.status_code} as {response.headers.get('content-type')}"
    return None


async def _room(client: httpx.AsyncClient) -> tuple[str, str, str]:
    host = str(uuid.uuid4())
    created = await client.post(
        "/api/v1/rooms", json={"title": "Fuzz", "max_participants": 100}, headers={"X-Participant-ID": host}
    )
    created.raise_for_status()
    body = created.json()
    return body["room"]["id"], host, body["participant"]["id"]


async def http_failures(base_url: str) -> list[str]:
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        room_id, host, host_public = await _room(client)
        message = await client.post(
            f"/api/v1/rooms/{room_id}/chat/messages",
            json={"content": "seed"},
            headers={"X-Participant-ID": host},
        )
        message_id = message.json()["id"]
        targets: list[tuple[str, str, dict[str, str]]] = [
            (
                "POST",
                "/api/v1/rooms",
                {"title": '"t"', "description": "null", "display_name": '"n"', "max_participants": "5"},
            ),
            ("POST", f"/api/v1/rooms/{room_id}/join", {"display_name": '"n"'}),
            ("POST", f"/api/v1/rooms/{room_id}/chat/messages", {"content": '"c"'}),
            ("PUT", f"/api/v1/rooms/{room_id}/chat/messages/{message_id}", {"content": '"c"'}),
            ("POST", f"/api/v1/rooms/{room_id}/media/participants/{host_public}/mute", {"kind": '"audio"'}),
        ]
        headers = {"X-Participant-ID": host, "Content-Type": "application/json"}
        for method, path, fields in targets:
            for field in fields:
                for value in HOSTILE_STRINGS:
                    body = (
                        "{"
                        + ", ".join(
                            f'"{name}": {value if name == field else default}'
                            for name, default in fields.items()
                        )
                        + "}"
                    )
                    response = await client.request(method, path, content=body.encode(), headers=headers)
                    if response.status_code < 400 and method == "POST" and path == "/api/v1/rooms":
                        continue  # a harmless value (e.g. a null description) makes a room
                    wrong = _problem(response)
                    if wrong:
                        failures.append(f"{method} {path} {field}={value[:30]}: {wrong}")
            for raw in HOSTILE_BODIES:
                response = await client.request(method, path, content=raw, headers=headers)
                wrong = _problem(response) or (
                    None if response.status_code in (400, 413, 422) else f"answered {response.status_code}"
                )
                if wrong:
                    failures.append(f"{method} {path} body={raw[:20]!r}: {wrong}")
        for path in (
            f"/api/v1/rooms/{room_id}/chat/messages?limit=%00",
            "/api/v1/rooms/%ED%A0%80",
            f"/api/v1/rooms/{room_id}/chat/messages?after=%F0%28%8C%28",
            "/api/v1/nope",
            "/api/v1/rooms/",
        ):
            wrong = _problem(await client.get(path, headers={"X-Participant-ID": host}))
            if wrong:
                failures.append(f"GET {path}: {wrong}")
        # Still serving, everybody else included.
        if (await client.get(f"/api/v1/rooms/{room_id}")).status_code != 200:
            failures.append("the room is no longer served after the hostile requests")
    return failures


async def ws_failures(base_url: str) -> list[str]:
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as client:
        room_id, host, _ = await _room(client)
    url = base_url.replace("http://", "ws://") + f"/ws/chat/{room_id}"
    for frame in HOSTILE_FRAMES:
        async with websockets.connect(url, max_size=None) as socket:
            await socket.send(json.dumps({"type": "auth", "participant_id": host, "after": None}))
            ready = json.loads(await asyncio.wait_for(socket.recv(), 10))
            if ready.get("type") != "ready":
                failures.append(f"no ready: {ready}")
                continue
            await socket.send(frame)
            outcome: Any = None
            try:
                while True:
                    answer = json.loads(await asyncio.wait_for(socket.recv(), 5))
                    if answer.get("type") in ("error", "ack"):
                        outcome = answer["type"]
                        break
            except websockets.ConnectionClosed as closed:
                outcome = closed.rcvd.code if closed.rcvd else 1006
            except TimeoutError:
                outcome = "silence"
            if outcome not in ("error", "ack", 4400, 1009, "silence"):
                failures.append(f"frame {frame[:40]!r}: {outcome}")
    return failures


async def hostile_failures(base_url: str) -> list[str]:
    return await http_failures(base_url) + await ws_failures(base_url)
