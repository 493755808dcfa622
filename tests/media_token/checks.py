"""Assertions shared by the media-token tests."""

from livekit import api as lk
from livekit.api.access_token import Claims

from veche.common.settings import CommonSettings


def assert_problem(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    """A problem+json answer with that status and code, and no secret in it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text


def verified(token: str) -> Claims:
    """The claims of a token that LiveKit would accept with the configured keys."""
    settings = CommonSettings()
    return lk.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret).verify(token)
