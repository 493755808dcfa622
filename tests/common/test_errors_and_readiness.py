"""The shared HTTP frame: problem+json shapes, body limit, readiness against real deps."""

from tests.support import app_client
from veche.rooms.main import create_app
from veche.rooms.settings import RoomsSettings


async def test_readyz_is_200_with_its_real_dependencies():
    async with app_client(create_app(RoomsSettings())) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    # rooms' schema check: the database is at the migrations' head (tests/rooms/test_schema_readiness.py).
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "schema": "ok"}


async def test_readyz_is_503_when_redis_url_points_at_nothing():
    settings = RoomsSettings(redis_url="redis://127.0.0.1:1/0", dependency_timeout_seconds=1)
    async with app_client(create_app(settings)) as client:
        response = await client.get("/readyz")
        healthz = await client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"
    assert response.json()["checks"]["redis"] == "down"
    assert "retry-after" in response.headers
    assert healthz.status_code == 200


async def test_a_request_while_redis_is_down_is_503_unavailable_not_500():
    settings = RoomsSettings(redis_url="redis://127.0.0.1:1/0", dependency_timeout_seconds=1)
    async with app_client(create_app(settings)) as client:
        response = await client.post("/api/v1/rooms", json={"title": "x"})
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["retry-after"]) >= 1


async def test_a_request_while_postgres_is_down_is_503_unavailable():
    settings = RoomsSettings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none", dependency_timeout_seconds=1
    )
    async with app_client(create_app(settings)) as client:
        response = await client.get("/api/v1/rooms/5b05b91f-c2a5-4d3a-8a72-887724459f2d")
        ready = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert ready.status_code == 503


async def test_metrics_are_prometheus_text():
    async with app_client(create_app(RoomsSettings())) as client:
        await client.get("/healthz")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "veche_http_requests_total" in response.text


async def test_body_over_64_kib_without_content_length_is_413():
    async def chunks():
        for _ in range(70):
            yield b"x" * 1024

    async with app_client(create_app(RoomsSettings())) as client:
        response = await client.post(
            "/api/v1/rooms", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_unknown_route_is_problem_json_404():
    async with app_client(create_app(RoomsSettings())) as client:
        response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
