"""Rooms made, joined, ended and kicked through the real rooms service."""

import httpx

from tests.helpers import hdr, new_pid


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
