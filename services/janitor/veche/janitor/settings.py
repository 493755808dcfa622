"""Settings of the janitor worker."""

from pydantic import model_validator

from veche.common.settings import PresenceSettings, RetentionSettings


class JanitorSettings(PresenceSettings, RetentionSettings):
    service_name: str = "janitor"
    # Where the janitor serves /healthz, /readyz and /metrics.
    janitor_host: str = "127.0.0.1"
    # Its port.
    janitor_port: int = 8004
    # How often each sweep (expiry, vanished members, retention) runs.
    janitor_sweep_interval_seconds: float = 10.0

    # A time-out sweep is skipped and logged as a platform fault when more members fell silent
    # within the last PRESENCE_TIMEOUT_SECONDS than this share of them and those still alive
    # (and at least PRESENCE_MASS_TIMEOUT_MIN of them).
    presence_mass_timeout_share: float = 0.5
    # The fewest time-outs in one sweep that the share above applies to.
    presence_mass_timeout_min: int = 20
    # How many candidates a sweep asks rooms for at a time.
    janitor_sweep_batch: int = 200
    # How many calls to rooms a sweep makes at once.
    janitor_sweep_concurrency: int = 8

    # The durable JetStream consumer that every janitor replica shares. Empty: derived from the
    # stream name, so runs with their own stream never share a consumer.
    janitor_durable: str = ""
    # How long JetStream waits for the acknowledgement of a room.ended event.
    janitor_ack_wait_seconds: float = 30.0
    # room.ended events handled at once.
    janitor_max_in_flight: int = 256
    # A room's keys are deleted when room.ended arrives and once more this long after, because
    # chat may still write a last system message after the event; the ack waits for both.
    janitor_cleanup_grace_seconds: float = 5.0
    # On SIGTERM, the events in hand get this long to finish; the rest come back redelivered.
    janitor_drain_timeout_seconds: float = 15.0

    @property
    def durable_name(self) -> str:
        return self.janitor_durable or f"janitor-{self.nats_stream}"

    @model_validator(mode="after")
    def _check_timing(self) -> "JanitorSettings":
        # The consumer gives a handler 80 % of the ack wait; the cleanup's second pass comes
        # after the grace, and must come before JetStream hands the event to another replica.
        if self.janitor_cleanup_grace_seconds + 1 > 0.8 * self.janitor_ack_wait_seconds:
            raise ValueError(
                "JANITOR_ACK_WAIT_SECONDS must be at least (JANITOR_CLEANUP_GRACE_SECONDS + 1) / 0.8"
            )
        if self.presence_timeout_seconds <= self.presence_refresh_seconds:
            raise ValueError("PRESENCE_TIMEOUT_SECONDS must exceed PRESENCE_REFRESH_SECONDS")
        return self
