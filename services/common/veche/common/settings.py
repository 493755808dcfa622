"""Typed settings read once from the environment; defaults serve a local run."""

from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The development secrets below are in this public repository: a service refuses them unless
# DEV_MODE is on (`make run`, `make test`, `make bench` turn it on for their own processes).
DEV_LIVEKIT_API_SECRET = "veche-local-development-secret-not-for-deployment"
DEV_INTERNAL_API_TOKEN = "veche-local-development-internal-token"
_PLACEHOLDER_PREFIX = "change-me"


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = "veche"
    # Level of the JSON log lines on stdout (DEBUG, INFO, WARNING, ERROR).
    log_level: str = "INFO"
    # Local development: the repository's development secrets are accepted. Never on a
    # deployment.
    dev_mode: bool = False

    # A single Redis.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A Redis Cluster: one or more seed nodes, comma-separated (redis://host:port,…), any of
    # which may be down at start; wins over REDIS_URL when set. Credentials and TLS are taken
    # from the first URL.
    redis_cluster_url: str | None = None
    # Connections one process keeps to Redis; more callers at once wait for one.
    redis_max_connections: int = 64
    # NATS with JetStream; several comma-separated URLs are the seeds of a NATS cluster (the
    # client learns the cluster's other servers from them and fails over between all of them).
    nats_url: str = "nats://127.0.0.1:4222"
    # This service's own NATS user (deploy/nats/nats.conf gives each service a user whose
    # publish rights cover only its own subjects).
    nats_user: str | None = None
    # The password of NATS_USER.
    nats_password: str | None = None
    # A NATS credentials file (JWT + NKEY) instead of a user and password.
    nats_creds_file: str | None = None
    # The JetStream stream of room events (a run, or a test run, may use its own).
    nats_stream: str = "ROOMS"
    # The subject prefix of room events: <prefix>.<room id>.<event>.
    nats_subject_prefix: str = "rooms"
    # Replicas of the JetStream stream when a service creates it (3 on a 3-node NATS cluster);
    # an existing stream with fewer is raised to this when the server allows it, never shrunk.
    nats_stream_replicas: int = 1

    # Where chat, media-token and the janitor reach rooms directly (never through the gateway);
    # several comma-separated URLs (one per replica) are tried in turn when one cannot be reached.
    rooms_internal_url: str = "http://127.0.0.1:8001"
    # The service credential of /internal/... calls (Authorization: Bearer …): every caller
    # sends it, rooms answers 401 without it.
    internal_api_token: str = DEV_INTERNAL_API_TOKEN
    # The peers whose X-Real-IP / X-Forwarded-For a service believes: the gateway's addresses
    # (CIDRs). A request from anyone else is counted under its own TCP peer address.
    gateway_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # A request is answered within this: 503, or 408 when its body has not arrived.
    request_timeout_seconds: float = 10.0
    # How long one call to PostgreSQL, Redis, NATS or another service may take.
    dependency_timeout_seconds: float = 3.0
    # Bodies over this get 413 before they are read whole.
    max_body_bytes: int = 64 * 1024
    # The Retry-After of a 503.
    retry_after_seconds: int = 5

    # Rate limits on or off (off only for benchmarks).
    rate_limits_enabled: bool = True
    # All requests about one room, whichever service answers them.
    rate_limit_room: str = "600/minute"

    # Browser origins allowed to call the API (JSON list).
    cors_origins: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:8080"])

    # Lifetime of a room's membership hash in Redis (rebuilt from PostgreSQL when missing).
    participants_ttl_seconds: int = 21600

    # OpenTelemetry tracing: the OTLP/HTTP endpoint of a collector (http://collector:4318);
    # spans go to <it>/v1/traces. Unset: tracing is off. The SDK's other OTEL_* variables
    # (OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_HEADERS, …) apply as usual.
    otel_exporter_otlp_endpoint: str | None = None

    @property
    def redis_cluster_seeds(self) -> list[str]:
        """REDIS_CLUSTER_URL split into its seed URLs (empty without a cluster)."""
        return [url.strip() for url in (self.redis_cluster_url or "").split(",") if url.strip()]

    @model_validator(mode="after")
    def _no_development_secrets_outside_dev_mode(self) -> "CommonSettings":
        if self.dev_mode:
            return self
        weak = []
        livekit_secret = getattr(self, "livekit_api_secret", None)  # the services that hold it
        if livekit_secret is not None and (
            livekit_secret == DEV_LIVEKIT_API_SECRET
            or len(livekit_secret) < 32
            or livekit_secret.startswith(_PLACEHOLDER_PREFIX)
        ):
            weak.append("LIVEKIT_API_SECRET (a pair from `livekit-server generate-keys`)")
        if (
            self.internal_api_token == DEV_INTERNAL_API_TOKEN
            or len(self.internal_api_token) < 32
            or self.internal_api_token.startswith(_PLACEHOLDER_PREFIX)
        ):
            weak.append("INTERNAL_API_TOKEN (e.g. `openssl rand -hex 32`)")
        if weak:
            raise ValueError(
                "refusing to start with a development or placeholder secret; set "
                + " and ".join(weak)
                + " (at least 32 characters), or DEV_MODE=true on a "
                "machine of your own"
            )
        return self


class PostgresSettings(CommonSettings):
    """The services that talk to PostgreSQL: rooms and the janitor."""

    # PostgreSQL (asyncpg URL; TLS through the query string, e.g. ?ssl=require).
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/veche"


class LiveKitSettings(CommonSettings):
    """The services that hold the LiveKit key pair: rooms (webhooks, non-member removal) and
    media-token (tokens, LiveKit's RoomService)."""

    # Where browsers connect to LiveKit (ws:// or wss://); empty turns video off.
    livekit_url: str = "ws://127.0.0.1:7880"
    # The API key of the LiveKit key pair; the default belongs to the LiveKit server that
    # `make run` and `make test` start on this host.
    livekit_api_key: str = "devkey"
    # The secret of the key pair: signs tokens and RoomService calls, checks webhooks.
    livekit_api_secret: str = DEV_LIVEKIT_API_SECRET
    # Where the services reach LiveKit's HTTP (Twirp) API when that is not the browser's
    # LIVEKIT_URL turned into http(s), e.g. `http://livekit:7880` inside a compose network.
    livekit_api_url: str | None = None
    # How long one call to LiveKit's API may take.
    livekit_api_timeout_seconds: float = 3.0

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


class PresenceSettings(CommonSettings):
    """Signs of life of members: chat records them, rooms and the janitor judge them."""

    # How often an open chat socket records a sign of life of its member.
    presence_refresh_seconds: float = 15.0
    # A member with no sign of life this long may be timed out (the janitor asks; rooms never
    # times out anyone fresher, whatever it is asked).
    presence_timeout_seconds: float = 90.0


class RetentionSettings(CommonSettings):
    """How long ended rooms are kept: rooms and the janitor."""

    # Ended rooms are deleted this long after they ended (rooms never deletes younger ones).
    room_retention_days: float = 30.0
