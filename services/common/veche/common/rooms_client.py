"""The one client of the rooms service that the other services use: its public room view and
its internal API (which needs the service credential). Every call either answers, says rooms
does not know the room, or raises RoomsUnavailable (a 503 problem where it reaches a user)."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict

from veche.common.errors import RoomNotFound, Unavailable
from veche.common.events import PublicParticipant
from veche.common.identity import HEADER
from veche.common.internal import internal_headers
from veche.common.settings import CommonSettings
from veche.common.timefmt import format_ts


class RoomsUnavailable(Unavailable):
    """rooms could not be reached, or could not answer."""


class RoomSnapshot(BaseModel):
    """The part of rooms' public Room view the other services need."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    livekit_room_name: str
    status: Literal["active", "ended"]
    max_participants: int
    e2ee: bool = False


class MembershipAnswer(BaseModel):
    """rooms' internal answer: the room's status and the caller's public membership."""

    model_config = ConfigDict(extra="ignore")

    room: RoomSnapshot
    member: PublicParticipant | None


class SweepMember(BaseModel):
    """A time-out candidate as rooms lists it: an active member with no LiveKit connection."""

    model_config = ConfigDict(extra="ignore")

    public_id: UUID
    room_id: UUID
    joined_at: datetime


class RoomsClient:
    """Calls rooms' replicas (ROOMS_INTERNAL_URL, comma-separated) in turn. A request that
    could not even connect is safe to send elsewhere, so it goes to the next replica; any other
    failure is RoomsUnavailable."""

    def __init__(self, settings: CommonSettings, timeout: float | None = None) -> None:
        self.bases = [
            url.strip().rstrip("/") for url in settings.rooms_internal_url.split(",") if url.strip()
        ]
        if not self.bases:
            raise ValueError("ROOMS_INTERNAL_URL names no URL")
        self._turn = 0
        self.http = httpx.AsyncClient(
            timeout=timeout or settings.dependency_timeout_seconds,
            headers=internal_headers(settings),
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        self._turn = (self._turn + 1) % len(self.bases)
        order = self.bases[self._turn :] + self.bases[: self._turn]
        for i, base in enumerate(order):
            try:
                response = await self.http.request(method, base + path, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if i + 1 < len(order):
                    continue
                raise RoomsUnavailable(f"rooms cannot be reached ({type(exc).__name__})") from exc
            except httpx.HTTPError as exc:
                raise RoomsUnavailable(f"rooms cannot be reached ({type(exc).__name__})") from exc
            if response.status_code >= 500 or response.status_code == 401:
                raise RoomsUnavailable(f"rooms answered {response.status_code} to {path}")
            return response
        raise AssertionError("unreachable: ROOMS_INTERNAL_URL names no URL")

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        if response.status_code != 200:
            raise RoomsUnavailable(f"rooms answered {response.status_code} to {path}")
        return response.json()

    async def room(self, room_id: UUID) -> RoomSnapshot | None:
        """The room, or None when rooms does not know it (never existed, or deleted)."""
        response = await self._call("GET", f"/api/v1/rooms/{room_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RoomsUnavailable(f"rooms answered {response.status_code} for room {room_id}")
        return RoomSnapshot.model_validate_json(response.content)

    async def has_ended(self, room_id: UUID) -> bool:
        """Whether the room ended, as PostgreSQL says (not the cached public view: this answer
        decides whether a room's data is deleted); a room rooms no longer knows counts as ended."""
        try:
            answer = await self.membership(room_id, None)
        except RoomNotFound:
            return True
        return answer.room.status == "ended"

    async def membership(self, room_id: UUID, participant_id: str | None) -> MembershipAnswer:
        """The room's status and the caller's membership (rooms rebuilds its Redis hash on the
        way); RoomNotFound when rooms does not know the room."""
        headers = {HEADER: participant_id} if participant_id else {}
        response = await self._call("GET", f"/internal/v1/rooms/{room_id}/membership", headers=headers)
        if response.status_code == 404:
            raise RoomNotFound(f"Room {room_id} does not exist")
        if response.status_code != 200:
            raise RoomsUnavailable(f"rooms answered {response.status_code} for room {room_id}")
        return MembershipAnswer.model_validate_json(response.content)

    async def due_rooms(self, limit: int) -> list[UUID]:
        """Active rooms past their empty-room expiry, the longest overdue first."""
        body = await self._json("GET", "/internal/v1/sweeps/due-rooms", params={"limit": limit})
        return [UUID(room_id) for room_id in body["rooms"]]

    async def unconnected_members(
        self, joined_before: datetime, after: tuple[datetime, UUID] | None, limit: int
    ) -> list[SweepMember]:
        """A page of active members with no LiveKit connection who joined before
        joined_before, in (joined_at, public_id) order after `after`."""
        params: dict[str, str | int] = {"joined_before": joined_before.isoformat(), "limit": limit}
        if after is not None:
            params |= {"after_joined": after[0].isoformat(), "after_id": str(after[1])}
        body = await self._json("GET", "/internal/v1/sweeps/unconnected-members", params=params)
        return [SweepMember.model_validate(member) for member in body["members"]]

    async def expire(self, room_id: UUID) -> bool:
        return bool((await self._json("POST", f"/internal/v1/rooms/{room_id}/expire", json={}))["ended"])

    async def time_out(self, room_id: UUID, public_id: UUID, idle_since_ms: int) -> bool:
        path = f"/internal/v1/rooms/{room_id}/participants/{public_id}/timeout"
        return bool((await self._json("POST", path, json={"idle_since_ms": idle_since_ms}))["left"])

    async def delete_ended_before(self, cutoff: datetime) -> int:
        body = await self._json("POST", "/internal/v1/retention", json={"ended_before": format_ts(cutoff)})
        return int(body["deleted"])
