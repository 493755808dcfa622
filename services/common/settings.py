"""Typed settings read once from the environment; defaults serve a local run."""

from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = "veche"
    log_level: str = "INFO"

    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/veche"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster_url: str | None = None
    nats_url: str = "nats://127.0.0.1:4222"
    # A run (or a test run) can use its own stream and subject prefix so runs never mix.
    nats_stream: str = "ROOMS"
    nats_subject_prefix: str = "rooms"

    rooms_internal_url: str = "http://127.0.0.1:8001"
    presence_refresh_seconds: float = 15.0
    request_timeout_seconds: float = 10.0
    dependency_timeout_seconds: float = 3.0
    max_body_bytes: int = 64 * 1024
    retry_after_seconds: int = 5

    rate_limits_enabled: bool = True
    rate_limit_create_room: str = "10/minute"
    rate_limit_join: str = "120/minute"
    rate_limit_chat_send: str = "20/10seconds"
    rate_limit_room: str = "600/minute"

    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8080"])

    livekit_url: str = "ws://127.0.0.1:7880"
    # The pair of the LiveKit server that `make run` and `make test` start on this host. Never
    # deploy it: compose and the k8s manifests require a pair of their own.
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "veche-local-development-secret-not-for-deployment"
    # Where the services reach LiveKit's HTTP (Twirp) API when that is not the browser's
    # LIVEKIT_URL turned into http(s), e.g. `http://livekit:7880` inside a compose network.
    livekit_api_url: str | None = None
    livekit_api_timeout_seconds: float = 3.0

    chat_ttl_seconds: int = 21600
    participants_ttl_seconds: int = 21600

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
