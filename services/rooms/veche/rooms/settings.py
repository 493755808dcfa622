"""Settings of the rooms service."""

from veche.common.settings import LiveKitSettings, PostgresSettings, PresenceSettings, RetentionSettings


class RoomsSettings(PostgresSettings, LiveKitSettings, PresenceSettings, RetentionSettings):
    service_name: str = "rooms"
    # An empty room ends after this long.
    room_empty_ttl_seconds: int = 300
    # How often the outbox relay looks for events when nothing woke it.
    outbox_poll_seconds: float = 1.0
    # Events the relay publishes per batch.
    outbox_batch: int = 200
    # How long a Redis write may take while a room's row is locked (leave, kick, end, time-out):
    # a frozen Redis then fails that request with 503 quickly instead of holding up the room.
    redis_in_lock_timeout_seconds: float = 1.0
    # Room creations per client address.
    rate_limit_create_room: str = "10/minute"
    # Joins per client address.
    rate_limit_join: str = "120/minute"
