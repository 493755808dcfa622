"""Redis key names. The room id sits in literal braces: a Redis Cluster hash tag, so every key
of one room lands in one slot and multi-key operations on a room stay legal."""

from uuid import UUID

# Field of the participants hash that records the room's status, so one HMGET answers both
# "is the room known and active" and "is this caller a member".
ROOM_STATUS_FIELD = "~status"


def room_participants(room_id: UUID | str) -> str:
    """Hash: participant_id (secret) -> JSON of the active member; plus ROOM_STATUS_FIELD."""
    return f"room:{{{room_id}}}:participants"


def room_meta(room_id: UUID | str) -> str:
    """String: JSON of the public Room, a cache invalidated on every change."""
    return f"room:{{{room_id}}}:meta"


def room_presence(room_id: UUID | str) -> str:
    """Sorted set: member public id -> epoch ms of the last sign of life (request, socket)."""
    return f"room:{{{room_id}}}:presence"


def room_rate_prefix(room_id: UUID | str) -> str:
    """Prefix of the rate-limit keys that count requests about one room."""
    return f"room:{{{room_id}}}:rate"


def chat_messages(room_id: UUID | str) -> str:
    """Sorted set: score = creation time in ms, value = message JSON."""
    return f"chat:room:{{{room_id}}}:messages"


def chat_channel(room_id: UUID | str) -> str:
    """Pub/sub channel carrying a room's chat frames to every chat replica."""
    return f"chat:room:{{{room_id}}}:fanout"


def chat_event_seen(room_id: UUID | str, event_id: UUID | str) -> str:
    """Marker that a ROOMS event already produced its system message."""
    return f"chat:room:{{{room_id}}}:event:{event_id}"


def all_room_key_patterns(room_id: UUID | str) -> list[str]:
    """Patterns covering every key of one room (for cleanup after the room ends)."""
    return [f"room:{{{room_id}}}:*", f"chat:room:{{{room_id}}}:*"]
