"""Input and HTTP edges every service shares (hardening pass): bad bytes and bad strings are
clean problem+json answers, one request's failure never reaches another's connection, no
redirects, secrets never cached, the internal API needs its credential, and no deployment
starts with the repository's development secrets."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import APIRouter

from tests.support import app_client, hdr, new_pid, serve
from veche.common.internal import internal_headers
from veche.common.settings import CommonSettings
from veche.common.web import create_app as create_service_app
from veche.rooms.main import create_app as create_rooms_app
from veche.rooms.settings import RoomsSettings

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
async def rooms():  # type: ignore[no-untyped-def]
    async with app_client(create_rooms_app(RoomsSettings())) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        b'{"title": "\xff\xfe broken"}',  # not UTF-8
        b'{"title": ' + b"[" * 30000 + b"]" * 30000 + b"}",  # nesting past the parser
        b'{"title": "t", "max_participants": ' + b"9" * 5000 + b"}",  # a 5000-digit integer
    ],
)
async def test_a_body_that_cannot_be_read_as_json_is_400_invalid_json(rooms, body: bytes):
    response = await rooms.post("/api/v1/rooms", content=body, headers={**JSON, **hdr(new_pid())})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "a\\ud800"),
        ("title", "a\\u0000b"),
        ("title", "esc \\u001b[2J"),
        ("title", "\\u200b\\u200b"),
        ("description", "x\\udfff"),
        ("description", "nul \\u0000"),
        ("display_name", "\\ud83d"),
        ("display_name", "\\u200b\\u200c\\u200d"),  # zero-width only
        ("display_name", "\\u202egnp.exe"),  # right-to-left override
        ("display_name", "adm\\U000e0069n".replace("\\U000e0069", "\\udb40\\udc69")),  # a tag char
        ("display_name", "\\u3164"),  # Hangul filler: looks empty
        ("display_name", "a\\u200db"),  # a joiner between letters
    ],
)
async def test_strings_with_nul_surrogates_controls_or_invisible_text_are_422(rooms, field, value):
    body = {"title": "ok", "display_name": "ok", field: "PLACEHOLDER"}
    raw = json.dumps(body).replace("PLACEHOLDER", value).encode()
    response = await rooms.post("/api/v1/rooms", content=raw, headers={**JSON, **hdr(new_pid())})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_a_description_keeps_line_breaks_and_names_keep_emoji_sequences(rooms):
    body = {"title": "Plan", "description": "line one\nline two\tend", "display_name": "👩‍👩‍👧 Family"}
    response = await rooms.post("/api/v1/rooms", json=body, headers=hdr(new_pid()))
    assert response.status_code == 201, response.text
    assert response.json()["room"]["description"] == body["description"]
    assert response.json()["participant"]["display_name"] == "👩‍👩‍👧 Family"


async def test_a_trailing_slash_is_404_and_never_a_redirect(rooms):
    for path in ("/api/v1/rooms/", f"/api/v1/rooms/{new_pid()}/"):
        response = await rooms.get(path, headers={"Host": "evil.example.com"})
        assert response.status_code == 404, response.text
        assert "location" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"


async def test_answers_carrying_a_secret_are_never_stored(rooms):
    pid = new_pid()
    created = await rooms.post("/api/v1/rooms", json={"title": "t"}, headers=hdr(pid))
    joined = await rooms.post(
        f"/api/v1/rooms/{created.json()['room']['id']}/join",
        json={"display_name": "B"},
        headers=hdr(new_pid()),
    )
    for response in (created, joined):
        assert response.headers["cache-control"] == "no-store"


async def test_a_refused_cors_preflight_is_problem_json(rooms):
    response = await rooms.options(
        "/api/v1/rooms",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "cors_rejected"


# --- the internal API ------------------------------------------------------------------------


async def test_internal_endpoints_need_the_service_credential(rooms):
    room = (await rooms.post("/api/v1/rooms", json={"title": "t"}, headers=hdr(new_pid()))).json()["room"]
    path = f"/internal/v1/rooms/{room['id']}/expire"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await rooms.post(path, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    retention = await rooms.post("/internal/v1/retention", json={"ended_before": "2999-01-01T00:00:00Z"})
    assert retention.status_code == 401
    ok = await rooms.post(path, headers=internal_headers(CommonSettings()))
    assert ok.status_code == 200 and ok.json() == {"ended": False}


async def test_a_timeout_asked_for_a_fresh_member_is_refused_whatever_idle_since_says(rooms):
    host = new_pid()
    created = (await rooms.post("/api/v1/rooms", json={"title": "t"}, headers=hdr(host))).json()
    room_id, host_id = created["room"]["id"], created["participant"]["id"]
    future = int((datetime.now(UTC) + timedelta(days=1)).timestamp() * 1000)
    response = await rooms.post(
        f"/internal/v1/rooms/{room_id}/participants/{host_id}/timeout",
        json={"idle_since_ms": future},
        headers=internal_headers(CommonSettings()),
    )
    assert response.status_code == 200 and response.json() == {"left": False}
    listed = (await rooms.get(f"/api/v1/rooms/{room_id}/participants")).json()["participants"]
    assert [p["id"] for p in listed] == [host_id]


async def test_retention_never_deletes_a_room_younger_than_the_retention(rooms):
    host = new_pid()
    room_id = (await rooms.post("/api/v1/rooms", json={"title": "t"}, headers=hdr(host))).json()["room"]["id"]
    assert (await rooms.post(f"/api/v1/rooms/{room_id}/end", headers=hdr(host))).status_code == 200
    response = await rooms.post(
        "/internal/v1/retention",
        json={"ended_before": "2999-01-01T00:00:00Z"},
        headers=internal_headers(CommonSettings()),
    )
    assert response.status_code == 200
    assert (await rooms.get(f"/api/v1/rooms/{room_id}")).json()["status"] == "ended"


# --- one request's failure stays its own ---------------------------------------------------


def _failing_app():  # type: ignore[no-untyped-def]
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):  # type: ignore[no-untyped-def]
        yield

    settings = CommonSettings(request_timeout_seconds=1.0)
    app = create_service_app(service="probe", settings=settings, lifespan=lifespan)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("a bug")

    @router.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    app.include_router(router)
    return app


async def _exchange(reader, writer, request: bytes) -> tuple[int, dict[str, str], bytes]:  # type: ignore[no-untyped-def]
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return status, headers, body


async def test_an_unexpected_error_is_a_problem_500_and_the_connection_serves_the_next_request():
    async with serve(_failing_app()) as served:
        port = int(served.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            get = b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n"
            status, headers, body = await _exchange(reader, writer, get % b"boom")
            assert status == 500 and headers["content-type"] == "application/problem+json"
            assert json.loads(body)["code"] == "internal_error" and "Traceback" not in body.decode()
            assert headers.get("connection") != "close"
            # The same keep-alive connection (the one a gateway would reuse) still works.
            status, _, body = await _exchange(reader, writer, get % b"healthz")
            assert status == 200 and json.loads(body) == {"status": "ok"}
        finally:
            writer.close()


async def test_a_body_that_does_not_arrive_in_time_is_408():
    async with serve(_failing_app()) as served:
        port = int(served.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"a": '
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.split()[1] == b"408", head
            assert b"application/problem+json" in head
        finally:
            writer.close()


async def test_janitor_style_bursts_do_not_exhaust_the_redis_pool():
    """Many calls at once wait for a pooled connection instead of failing (L6)."""
    from veche.common.clients import create_redis

    redis = create_redis(CommonSettings(redis_max_connections=4))
    try:
        results = await asyncio.gather(*(redis.ping() for _ in range(200)))
        assert all(results)
    finally:
        await redis.aclose()
