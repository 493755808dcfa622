"""Settings of the rooms service."""

from typing import ClassVar

from veche.common.settings import CommonSettings


class RoomsSettings(CommonSettings):
    service_name: str = "rooms"
    uses_livekit: ClassVar[bool] = True
    # An empty room ends after this long.
    room_empty_ttl_seconds: int = 300
    # How often the outbox relay looks for events when nothing woke it.
    outbox_poll_seconds: float = 1.0
    # Events the relay publishes per batch.
    outbox_batch: int = 200
