"""Settings of the media-token service."""

from urllib.parse import urlsplit, urlunsplit

from common.settings import CommonSettings


class MediaSettings(CommonSettings):
    service_name: str = "media-token"
    livekit_token_ttl_seconds: int = 3600
    # Where media-token reaches LiveKit's HTTP (Twirp) API when that is not the browser's
    # LIVEKIT_URL turned into http(s), e.g. `http://livekit:7880` inside a compose network.
    livekit_api_url: str | None = None
    livekit_api_timeout_seconds: float = 3.0
    # A LiveKit room nobody joined closes after empty_timeout; one everybody left, after
    # departure_timeout (long enough to survive a page reload). LiveKit re-creates a closed
    # room when someone with a token joins it again.
    livekit_empty_timeout_seconds: int = 600
    livekit_departure_timeout_seconds: int = 60
    # The durable consumer of ROOMS events that keeps LiveKit in step; by default one per
    # stream, shared by every media-token replica.
    livekit_sync_durable: str | None = None
    livekit_sync_retry_max_seconds: float = 10.0
    # An event LiveKit could not be told about for this long is given up: by then LiveKit has
    # closed the empty room itself and any token of a kicked member has expired.
    livekit_sync_give_up_seconds: int = 6 * 3600

    @property
    def livekit_enabled(self) -> bool:
        return bool(self.livekit_url.strip())

    @property
    def livekit_http_url(self) -> str:
        """LiveKit's server API: LIVEKIT_API_URL, or LIVEKIT_URL with ws→http, wss→https."""
        if self.livekit_api_url:
            return self.livekit_api_url.rstrip("/")
        parts = urlsplit(self.livekit_url.strip())
        scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
        return urlunsplit(parts._replace(scheme=scheme)).rstrip("/")

    @property
    def sync_durable(self) -> str:
        return self.livekit_sync_durable or f"media-token-{self.nats_stream}"
