"""Who is an active member of a room, as chat and media-token see it.

The answer comes from the `room:{id}:participants` hash that rooms writes before it answers a
join; when that hash is missing (Redis restarted or flushed), rooms is asked over its internal
endpoint, which rebuilds the hash from PostgreSQL."""

from dataclasses import dataclass
from uuid import UUID

from veche.common.errors import NotAParticipant, RoomEnded
from veche.common.events import PublicParticipant
from veche.common.rooms_client import RoomsClient
from veche.common.roomstate import RoomState, parse_member


@dataclass(frozen=True)
class Membership:
    room_id: UUID
    room_status: str
    member: PublicParticipant | None
    e2ee: bool = False

    def require_active(self) -> PublicParticipant:
        """The caller's membership; 409 room_ended / 403 not_a_participant otherwise."""
        if self.room_status == "ended":
            raise RoomEnded(f"Room {self.room_id} has ended")
        if self.member is None:
            raise NotAParticipant("You are not an active participant of this room")
        return self.member


class MembershipResolver:
    def __init__(self, state: RoomState, rooms: RoomsClient) -> None:
        self.state = state
        self.rooms = rooms

    async def close(self) -> None:
        await self.rooms.close()

    async def resolve(self, room_id: UUID, participant_id: UUID | str | None) -> Membership:
        pid = str(participant_id) if participant_id else None
        status, raw, e2ee = await self.state.member_and_e2ee(room_id, pid)
        # A member's question on a hash without the e2ee flag (written by a put after Redis
        # lost the hash) is asked of rooms, so an e2ee room is never taken for a plain one; a
        # question about the room's status alone (no participant) needs no flag.
        if status is not None and (e2ee is not None or pid is None):
            return Membership(room_id, status, parse_member(raw) if raw else None, bool(e2ee))
        answer = await self.rooms.membership(room_id, pid)  # rebuilds the hash
        return Membership(room_id, answer.room.status, answer.member, answer.room.e2ee)

    async def members(self, room_id: UUID) -> list[PublicParticipant]:
        """Every active member of the room from the hash (public views only)."""
        return await self.state.members(room_id)
