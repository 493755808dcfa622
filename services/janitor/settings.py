"""Settings of the janitor worker."""

from common.settings import CommonSettings


class JanitorSettings(CommonSettings):
    service_name: str = "janitor"
    janitor_host: str = "127.0.0.1"
    janitor_port: int = 8004
    janitor_sweep_interval_seconds: float = 10.0
    presence_timeout_seconds: int = 90
    room_retention_days: int = 30
