"""Prometheus metrics of the janitor."""

from prometheus_client import Counter, Gauge, Histogram

ROOMS_EXPIRED = Counter(
    "veche_janitor_rooms_expired_total", "Empty rooms past their expires_at that rooms ended"
)
PARTICIPANTS_TIMED_OUT = Counter(
    "veche_janitor_participants_timed_out_total", "Vanished members marked left with reason timeout"
)
ROOMS_DELETED = Counter(
    "veche_janitor_rooms_deleted_total", "Ended rooms deleted from PostgreSQL after the retention"
)
KEYS_DELETED = Counter("veche_janitor_keys_deleted_total", "Redis keys of ended rooms deleted")
EVENTS_PROCESSED = Counter(
    "veche_janitor_events_processed_total",
    "room.ended events handled, by outcome: cleaned, duplicate (already done), refused (rooms "
    "says the room is active), ignored",
    ["outcome"],
)
EVENT_FAILURES = Counter(
    "veche_janitor_event_failures_total", "Event handlings that failed and were handed back"
)
CONSUMER_LAG = Gauge(
    "veche_janitor_consumer_lag", "Events of the stream not yet delivered to the janitor consumer"
)
CONSUMER_ACK_PENDING = Gauge(
    "veche_janitor_consumer_ack_pending", "Events delivered to a janitor and not yet acknowledged"
)
SWEEP_SECONDS = Histogram("veche_janitor_sweep_seconds", "Duration of one sweep")
SWEEP_FAILURES = Counter(
    "veche_janitor_sweep_failures_total", "Sweeps (or parts of one) that failed", ["sweep"]
)
PRESENCE_SEEDED = Counter(
    "veche_janitor_presence_seeded_total",
    "Members with no recorded sign of life (Redis lost it) given a fresh presence timeout",
)
TIMEOUTS_SUSPENDED = Counter(
    "veche_janitor_timeouts_suspended_total",
    "Time-out sweeps skipped as a platform fault, by reason",
    ["reason"],
)
