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
    # Room creations per client address.
    rate_limit_create_room: str = "10/minute"
    # Joins per client address.
    rate_limit_join: str = "120/minute"
