"""Request parameters every service reads the same way: the X-Participant-ID header (a secret
bearer credential, a UUID made by the client) and the room id in the path."""

from typing import Annotated
from uuid import UUID

from fastapi import Header, Request

from veche.common.errors import InvalidParticipantId, RoomNotFound

HEADER = "X-Participant-ID"

IdentityHeader = Annotated[
    str | None,
    Header(alias=HEADER, description="The caller's secret participant id (a UUID)."),
]


def parse_participant_id(raw: str | None) -> UUID | None:
    if raw is None or raw == "":
        return None
    try:
        return UUID(raw.strip())
    except (ValueError, AttributeError, TypeError):
        raise InvalidParticipantId("X-Participant-ID must be a UUID") from None


def participant_id_from(request: Request) -> UUID | None:
    return parse_participant_id(request.headers.get(HEADER))


def optional_participant_id(x_participant_id: IdentityHeader = None) -> UUID | None:
    """Dependency: the caller's participant id, when it sent one (and documented as such)."""
    return parse_participant_id(x_participant_id)


def parse_room_id(raw: str) -> UUID:
    """The room id of a path; a malformed one is an unknown room (404 room_not_found)."""
    try:
        return UUID(raw)
    except ValueError:
        raise RoomNotFound(f"Room {raw[:64]} does not exist") from None


def room_id_path(room_id: str) -> UUID:
    """Dependency: the `{room_id}` of the path as a UUID (404 room_not_found when malformed)."""
    return parse_room_id(room_id)
