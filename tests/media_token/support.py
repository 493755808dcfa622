"""Helpers of the media-token tests: rooms made, joined, ended and kicked through the real
rooms service, and the assertions they share."""

import httpx
from livekit import api as lk
from livekit.api.access_token import Claims

from tests.support import hdr, new_pid
from veche.common.settings import LiveKitSettings


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
    settings = LiveKitSettings()
    return lk.TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret).verify(token)


class Meeting:
    """A room made through the real rooms service, with its host."""

    def __init__(self, rooms: httpx.AsyncClient) -> None:
        self.rooms = rooms
        self.host = new_pid()
        self.id = ""
        self.livekit_room = ""
        self.host_public_id = ""

    async def create(self, max_participants: int = 5, display_name: str = "Anna") -> "Meeting":
        response = await self.rooms.post(
            "/api/v1/rooms",
            json={"title": "Media", "max_participants": max_participants, "display_name": display_name},
            headers=hdr(self.host),
        )
        assert response.status_code == 201, response.text
        room = response.json()["room"]
        self.id, self.livekit_room = room["id"], room["livekit_room_name"]
        self.host_public_id = response.json()["participant"]["id"]
        return self

    async def join(self, display_name: str = "Boris") -> tuple[str, str]:
        """(secret participant_id, public id) of a new member."""
        pid = new_pid()
        response = await self.rooms.post(
            f"/api/v1/rooms/{self.id}/join", json={"display_name": display_name}, headers=hdr(pid)
        )
        assert response.status_code == 201, response.text
        return pid, response.json()["id"]

    async def end(self) -> httpx.Response:
        return await self.rooms.post(f"/api/v1/rooms/{self.id}/end", headers=hdr(self.host))

    async def kick(self, public_id: str) -> httpx.Response:
        return await self.rooms.post(
            f"/api/v1/rooms/{self.id}/participants/{public_id}/kick", headers=hdr(self.host)
        )

    async def leave(self, pid: str) -> httpx.Response:
        return await self.rooms.post(f"/api/v1/rooms/{self.id}/leave", headers=hdr(pid))
