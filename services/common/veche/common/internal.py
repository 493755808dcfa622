"""The service credential of the internal API (`/internal/...` on rooms).

The gateway never routes those paths, but a port can be reached directly inside a cluster or a
host: every call carries `Authorization: Bearer <INTERNAL_API_TOKEN>`, and rooms answers 401
problem+json without it."""

import hmac

from fastapi import Request

from veche.common.errors import Unauthorized
from veche.common.settings import CommonSettings


class MissingServiceCredential(Unauthorized):
    code, title = "unauthorized", "Service credential required"


def internal_headers(settings: CommonSettings) -> dict[str, str]:
    """The headers every internal call sends."""
    return {"Authorization": f"Bearer {settings.internal_api_token}"}


async def require_service_credential(request: Request) -> None:
    """A FastAPI dependency of every internal route."""
    settings: CommonSettings = request.app.state.settings
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    expected = settings.internal_api_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise MissingServiceCredential("This endpoint needs the service credential")
