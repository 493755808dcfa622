"""Schemas of the events on the ROOMS stream. Versioned by adding fields, never by changing."""

import json
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, Field

from veche.common.timefmt import Timestamp, utcnow

EventType = Literal["room.created", "room.ended", "participant.joined", "participant.left"]
LeaveReason = Literal["left", "kicked", "timeout", "room_ended"]


class PublicParticipant(BaseModel):
    """What anyone in the room may see of a member: never the secret participant_id."""

    id: UUID
    display_name: str
    role: Literal["host", "participant"]
    joined_at: Timestamp
    livekit_sid: str | None = None


class RoomEvent(BaseModel):
    event_id: UUID = Field(default_factory=uuid4)
    type: EventType
    occurred_at: Timestamp = Field(default_factory=utcnow)
    room_id: UUID
    participant: PublicParticipant | None = None
    reason: LeaveReason | None = None

    def to_json(self) -> bytes:
        body: dict[str, Any] = self.model_dump(mode="json")
        if self.type != "participant.left":
            body.pop("reason", None)
        return json.dumps(body, ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "RoomEvent":
        return cls.model_validate_json(data)


def event_subject(prefix: str, room_id: UUID | str, event_type: str) -> str:
    return f"{prefix}.{room_id}.{event_type}"
