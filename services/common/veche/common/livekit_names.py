"""The name of a room's LiveKit room: rooms stores it, media-token mints tokens and manages
LiveKit rooms with it, so the rule lives once, here."""

from uuid import UUID

LIVEKIT_ROOM_PREFIX = "veche-"


def livekit_room_name(room_id: UUID | str) -> str:
    return f"{LIVEKIT_ROOM_PREFIX}{room_id}"
