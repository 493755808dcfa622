"""Settings of the rooms service."""

from veche.common.settings import CommonSettings


class RoomsSettings(CommonSettings):
    service_name: str = "rooms"
    room_empty_ttl_seconds: int = 300
    outbox_poll_seconds: float = 1.0
    outbox_batch: int = 200
