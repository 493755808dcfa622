"""Settings of the media-token service."""

from veche.common.settings import LiveKitSettings


class MediaSettings(LiveKitSettings):
    service_name: str = "media-token"
    # LiveKit renews a connected participant's token by itself; a client asks for a new one
    # to reconnect. Short, so a kicked member's token is soon worth nothing anywhere.
    livekit_token_ttl_seconds: int = 600
    # A LiveKit room nobody joined closes after empty_timeout; one everybody left, after
    # departure_timeout (long enough to survive a page reload). auto_create is off, so media-token
    # makes the room again when a member asks for a token.
    livekit_empty_timeout_seconds: int = 600
    # How long a LiveKit room everybody left stays open.
    livekit_departure_timeout_seconds: int = 60
    # The durable consumer of ROOMS events that keeps LiveKit in step; by default one per
    # stream, shared by every media-token replica.
    livekit_sync_durable: str | None = None
    # The longest delay between two tries of a LiveKit call that failed.
    livekit_sync_retry_max_seconds: float = 10.0
    # An event LiveKit could not be told about for this long is given up: by then LiveKit has
    # closed the empty room itself and any token of a kicked member has expired.
    livekit_sync_give_up_seconds: int = 6 * 3600

    @property
    def sync_durable(self) -> str:
        return self.livekit_sync_durable or f"media-token-{self.nats_stream}"
