"""Settings of the media-token service."""

from common.settings import CommonSettings


class MediaSettings(CommonSettings):
    service_name: str = "media-token"
    livekit_token_ttl_seconds: int = 3600
