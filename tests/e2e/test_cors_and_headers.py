"""CORS for the browser client and the security headers on every answer, through Traefik."""

import pytest

pytestmark = pytest.mark.e2e


async def test_preflight_from_the_gateways_own_origin_is_allowed_with_the_identity_header(gw, stack):
    response = await gw.options(
        "/api/v1/rooms",
        headers={
            "Origin": stack.url,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-participant-id",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == stack.url
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "x-participant-id" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]


async def test_the_identity_header_is_exposed_to_scripts_of_the_allowed_origin(gw, stack):
    response = await gw.post("/api/v1/rooms", json={"title": "cors"}, headers={"Origin": stack.url})
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == stack.url
    assert "x-participant-id" in response.headers["access-control-expose-headers"].lower()


async def test_preflight_from_another_origin_is_refused(gw):
    response = await gw.options(
        "/api/v1/rooms",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-participant-id",
        },
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    simple = await gw.get("/_/rooms/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    "path", ["/api/v1/rooms/00000000-0000-4000-8000-000000000000", "/_/rooms/healthz", "/_/chat/healthz"]
)
async def test_api_answers_carry_the_security_headers(gw, path):
    response = await gw.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_the_web_client_is_served_with_a_strict_content_security_policy(gw):
    response = await gw.get("/")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
