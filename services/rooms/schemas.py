"""Request and response shapes of the rooms API (API.md: Shapes, Field rules)."""

import unicodedata
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from common.events import PublicParticipant
from common.timefmt import Timestamp

_FORBIDDEN_CATEGORIES = {"Cc", "Zl", "Zp"}


def _trimmed(max_length: int, what: str, no_control: bool = False):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError(f"{what} must not be empty")
        if len(value) > max_length:
            raise ValueError(f"{what} must be at most {max_length} characters")
        if no_control and any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value):
            raise ValueError(f"{what} must not contain control characters")
        return value

    return check


Title = Annotated[StrictStr, AfterValidator(_trimmed(255, "title"))]
DisplayName = Annotated[StrictStr, AfterValidator(_trimmed(64, "display_name", no_control=True))]
Description = Annotated[StrictStr, Field(max_length=2000)]
MaxParticipants = Annotated[StrictInt, Field(ge=2, le=100)]


class CreateRoom(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: Title
    description: Description | None = None
    max_participants: MaxParticipants = 10
    display_name: DisplayName | None = None


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
