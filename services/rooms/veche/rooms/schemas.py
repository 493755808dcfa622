"""Request and response shapes of the rooms API (docs/api.md: Shapes, Field rules)."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from veche.common.events import LobbyRequestView, PublicParticipant
from veche.common.text import LINE_BREAKS, plain_text, trimmed_text
from veche.common.timefmt import Timestamp

Title = Annotated[StrictStr, AfterValidator(trimmed_text("title", 255, no_format=True))]
DisplayName = Annotated[StrictStr, AfterValidator(trimmed_text("display_name", 64, no_format=True))]
Description = Annotated[StrictStr, AfterValidator(plain_text("description", 2000, LINE_BREAKS))]
MaxParticipants = Annotated[StrictInt, Field(ge=2, le=100)]


class CreateRoom(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: Title
    description: Description | None = None
    max_participants: MaxParticipants = 10
    display_name: DisplayName | None = None
    locked: StrictBool = False
    lobby: StrictBool = False
    e2ee: StrictBool = False


class UpdateRoom(BaseModel):
    """PATCH body: any of these; a field left out is unchanged. `e2ee` is fixed at creation."""

    model_config = ConfigDict(extra="ignore")

    title: Title | None = None
    description: Description | None = None
    max_participants: MaxParticipants | None = None
    locked: StrictBool | None = None
    lobby: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _fixed_fields(cls, data: object) -> object:
        if isinstance(data, dict):
            if "e2ee" in data:
                raise ValueError("e2ee is set when the room is created and cannot be changed")
            for name in ("title", "max_participants", "locked", "lobby"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} may not be null")
        return data


class RaiseHand(BaseModel):
    model_config = ConfigDict(extra="ignore")

    raised: StrictBool


class JoinRoom(BaseModel):
    model_config = ConfigDict(extra="ignore")

    display_name: DisplayName


class RoomView(BaseModel):
    id: UUID
    livekit_room_name: str
    title: str
    description: str | None
    status: Literal["active", "ended"]
    max_participants: int
    participant_count: int
    created_at: Timestamp
    updated_at: Timestamp
    expires_at: Timestamp | None
    locked: bool = False
    lobby: bool = False
    e2ee: bool = False


class Waiting(BaseModel):
    """A knock on a lobby room that waits for a host (202)."""

    status: Literal["waiting"] = "waiting"
    request_id: UUID


class LobbyList(BaseModel):
    requests: list[LobbyRequestView]


class SelfView(BaseModel):
    """The caller's own membership: the only shape that carries participant_id."""

    id: UUID
    room_id: UUID
    participant_id: UUID
    display_name: str
    role: Literal["host", "participant"]
    joined_at: Timestamp
    left_at: Timestamp | None


class CreatedRoom(BaseModel):
    room: RoomView
    participant: SelfView


class ParticipantList(BaseModel):
    participants: list[PublicParticipant]


class MembershipCheck(BaseModel):
    """Internal answer to chat and media-token: the room and the caller's public membership."""

    room: RoomView
    member: PublicParticipant | None


class TimeoutRequest(BaseModel):
    """Internal: time a member out when it shows no sign of life since then (epoch ms)."""

    idle_since_ms: int


class RetentionRequest(BaseModel):
    """Internal: delete the rooms that ended before this."""

    ended_before: datetime


class DueRooms(BaseModel):
    """Internal: the rooms past their empty-room expiry, for the janitor to have ended."""

    rooms: list[UUID]


class UnconnectedMember(BaseModel):
    """Internal: an active member with no LiveKit connection, a time-out candidate."""

    public_id: UUID
    room_id: UUID
    # Full precision (not the API's milliseconds): it is the next page's cursor.
    joined_at: datetime


class UnconnectedMembers(BaseModel):
    """Internal: one page of time-out candidates, in (joined_at, public_id) order."""

    members: list[UnconnectedMember]
