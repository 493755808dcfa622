"""Redis key names. The room id sits in literal braces: a Redis Cluster hash tag, so every key
of one room lands in one slot and multi-key operations on a room stay legal."""

from uuid import UUID

# Field of the participants hash that records the room's status, so one HMGET answers both
# "is the room known and active" and "is this caller a member".
ROOM_STATUS_FIELD = "~status"
# Field of the participants hash that records whether the room is end-to-end encrypted ("1" or
# "0"), written whenever rooms rebuilds the hash; a hash without it is asked of rooms again.
ROOM_E2EE_FIELD = "~e2ee"


def room_participants(room_id: UUID | str) -> str:
    """Hash: participant_id (secret) -> JSON of the active member; plus ROOM_STATUS_FIELD and
    ROOM_E2EE_FIELD (field names starting with `~` are never participants)."""
    return f"room:{{{room_id}}}:participants"


def room_meta(room_id: UUID | str) -> str:
    """Hash {json, gen}: the public Room's JSON, a cache dropped (and `gen` bumped) on every change."""
    return f"room:{{{room_id}}}:meta"


def room_presence(room_id: UUID | str) -> str:
    """Sorted set: member public id -> epoch ms of the last sign of life (request, socket)."""
    return f"room:{{{room_id}}}:presence"


def chat_messages(room_id: UUID | str) -> str:
    """Sorted set: score = creation time in ms, value = message JSON."""
    return f"chat:room:{{{room_id}}}:messages"


def chat_channel(room_id: UUID | str) -> str:
    """Pub/sub channel carrying a room's chat frames to every chat replica."""
    return f"chat:room:{{{room_id}}}:fanout"


def chat_head(room_id: UUID | str) -> str:
    """String: the greatest message id ever written to the room."""
    return f"chat:room:{{{room_id}}}:head"


def chat_events_seen(room_id: UUID | str) -> str:
    """Set: ids of the ROOMS events that already produced their system message or frames."""
    return f"chat:room:{{{room_id}}}:events"


def chat_bytes(room_id: UUID | str) -> str:
    """String: the bytes the room's stored messages take, for its history byte budget."""
    return f"chat:room:{{{room_id}}}:bytes"


def presence_keepers() -> str:
    """Sorted set: chat replica id -> epoch ms of its last presence round. The janitor times
    nobody out while no replica keeps presence (chat down is not everyone leaving)."""
    return "presence:{keepers}"


def presence_keepers_since() -> str:
    """Sorted set: chat replica id -> epoch ms of its first presence round (same hash tag)."""
    return "presence:{keepers}:since"


def janitor_claim(kind: str, item: UUID | str) -> str:
    """String: which janitor replica works on this item of a sweep (a token, with a TTL). All
    claims share one hash tag, so one script can release a batch of them in Redis Cluster."""
    return f"janitor:{{claims}}:{kind}:{item}"


def room_key_names(room_id: UUID | str) -> list[str]:
    """Every key a room has: cleanup deletes them by name, with no SCAN of the keyspace."""
    return [
        room_participants(room_id),
        room_meta(room_id),
        room_presence(room_id),
        chat_messages(room_id),
        chat_head(room_id),
        chat_events_seen(room_id),
        chat_bytes(room_id),
    ]


def all_room_key_patterns(room_id: UUID | str) -> list[str]:
    """Patterns covering every key of one room (for checks that nothing is left)."""
    return [f"room:{{{room_id}}}:*", f"chat:room:{{{room_id}}}:*"]
