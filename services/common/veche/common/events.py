"""Schemas of the events on the ROOMS stream. Versioned by adding fields, never by changing."""

import json
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from veche.common.timefmt import Timestamp, utcnow

EventType = Literal[
    "room.created",
    "room.ended",
    "room.updated",
    "participant.joined",
    "participant.left",
    "participant.updated",
    "lobby.requested",
    "lobby.resolved",
]
LeaveReason = Literal["left", "kicked", "timeout", "room_ended"]
# What a participant.updated changed: a host promoted or demoted it, its hand, or it became
# host because the last host left (chat posts "Anna is now the host" for that one only).
UpdateKind = Literal["promoted", "demoted", "hand", "host_changed"]

# The fields only some event types carry; every other type's body leaves them out.
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "participant.left": ("reason",),
    "participant.updated": ("change",),
    "room.updated": ("room",),
    "lobby.requested": ("request",),
    "lobby.resolved": ("request_id", "admitted"),
}
_OPTIONAL_FIELDS = {name for names in _TYPE_FIELDS.values() for name in names}


class PublicParticipant(BaseModel):
    """What anyone in the room may see of a member: never the secret participant_id."""

    id: UUID
    display_name: str
    role: Literal["host", "participant"]
    joined_at: Timestamp
    livekit_sid: str | None = None
    hand_raised_at: Timestamp | None = None


class LobbyRequestView(BaseModel):
    """A waiting knock as hosts see it: never the knocker's secret."""

    id: UUID
    display_name: str
    requested_at: Timestamp


class RoomEvent(BaseModel):
    event_id: UUID = Field(default_factory=uuid4)
    type: EventType
    occurred_at: Timestamp = Field(default_factory=utcnow)
    room_id: UUID
    participant: PublicParticipant | None = None
    reason: LeaveReason | None = None
    change: UpdateKind | None = None
    # room.updated: the public Room (rooms' RoomView) after the change.
    room: dict[str, Any] | None = None
    request: LobbyRequestView | None = None
    request_id: UUID | None = None
    admitted: bool | None = None

    def to_json(self) -> bytes:
        body: dict[str, Any] = self.model_dump(mode="json")
        for name in _OPTIONAL_FIELDS - set(_TYPE_FIELDS.get(self.type, ())):
            body.pop(name, None)
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "RoomEvent":
        return cls.model_validate_json(data)


def event_subject(prefix: str, room_id: UUID | str, event_type: str) -> str:
    return f"{prefix}.{room_id}.{event_type}"
