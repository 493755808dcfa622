"""The stack through Traefik: health of every service, error shapes, route split."""

import os

import asyncpg
import pytest

from tests.support import hdr, new_pid
from veche.common.settings import LiveKitSettings

pytestmark = pytest.mark.e2e

SERVICES = ["rooms", "chat", "media-token", "janitor"]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("probe", ["healthz", "readyz", "metrics"])
async def test_every_service_answers_its_probes_through_the_gateway(gw, service, probe):
    response = await gw.get(f"/_/{service}/{probe}")
    assert response.status_code == 200, response.text
    if probe == "metrics":
        assert response.headers["content-type"].startswith("text/plain")
        assert "# TYPE" in response.text


async def test_malformed_json_through_the_gateway_is_400_invalid_json(gw):
    response = await gw.post(
        "/api/v1/rooms", content=b'{"title": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_json"
    assert body["status"] == 400
    assert {"type", "title", "detail"} <= body.keys()


async def test_body_of_70_kib_is_413_payload_too_large(gw):
    big = b'{"title": "' + b"x" * (70 * 1024) + b'"}'
    response = await gw.post("/api/v1/rooms", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "payload_too_large"


async def test_internal_routes_are_not_reachable_through_the_gateway(gw):
    created = (await gw.post("/api/v1/rooms", json={"title": "t"})).json()
    room_id = created["room"]["id"]
    pid = created["participant"]["participant_id"]
    response = await gw.get(f"/internal/v1/rooms/{room_id}/membership", headers=hdr(pid))
    assert response.status_code == 404
    assert "participant_id" not in response.text


async def test_room_flow_through_the_gateway(gw):
    host = new_pid()
    created = await gw.post("/api/v1/rooms", json={"title": "Standup"}, headers=hdr(host))
    assert created.status_code == 201
    room_id = created.json()["room"]["id"]
    assert created.headers["location"] == f"/api/v1/rooms/{room_id}"
    joined = await gw.post(f"/api/v1/rooms/{room_id}/join", json={"display_name": "Anna"})
    assert joined.status_code == 201
    listed = await gw.get(f"/api/v1/rooms/{room_id}/participants")
    assert [p["display_name"] for p in listed.json()["participants"]] == ["Host", "Anna"]


async def test_media_token_through_the_gateway_names_the_public_id_never_the_secret(gw, stack):
    from livekit.api import TokenVerifier

    host = new_pid()
    created = (await gw.post("/api/v1/rooms", json={"title": "Media"}, headers=hdr(host))).json()
    room_id, public_id = created["room"]["id"], created["participant"]["id"]
    response = await gw.post(f"/api/v1/rooms/{room_id}/media/token", headers=hdr(host))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "url", "room", "identity", "expires_at"}
    assert body["identity"] == public_id
    assert body["room"] == created["room"]["livekit_room_name"]
    assert body["url"] == stack.env["LIVEKIT_URL"]
    keys = LiveKitSettings()
    claims = TokenVerifier(keys.livekit_api_key, keys.livekit_api_secret).verify(body["token"])
    assert claims.identity == public_id
    assert claims.video.room == body["room"] and claims.video.room_join and claims.video.room_admin
    assert host not in response.text
    stranger = await gw.post(f"/api/v1/rooms/{room_id}/media/token", headers=hdr(new_pid()))
    assert stranger.status_code == 403
    assert stranger.json()["code"] == "not_a_participant"


async def test_through_the_gateway_a_spoofed_forwarded_for_is_not_stored_as_client_ip(gw):
    pid = new_pid()
    response = await gw.post(
        "/api/v1/rooms",
        json={"title": "Spoof"},
        headers={**hdr(pid), "X-Forwarded-For": "198.51.100.66", "X-Real-IP": "198.51.100.67"},
    )
    assert response.status_code == 201
    conn = await asyncpg.connect(os.environ["DATABASE_URL"].replace("postgresql+asyncpg", "postgresql"))
    try:
        ip = await conn.fetchval(
            "SELECT host(client_ip) FROM room_participants WHERE participant_id = $1", pid
        )
    finally:
        await conn.close()
    assert ip == "127.0.0.1"
