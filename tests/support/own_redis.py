"""A Redis server of a test's own, which the test may kill, freeze (SIGSTOP) and bring back
without disturbing the rest of the session."""

import os
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from veche.local.infra import LocalInfra
from veche.local.stack import free_port


class OwnRedis:
    def __init__(self) -> None:
        self.infra = LocalInfra(Path(tempfile.mkdtemp(prefix="veche-own-redis-")))
        self.url = f"redis://127.0.0.1:{free_port()}/0"

    def start(self) -> None:
        self.infra.redis(self.url)

    def signal(self, sig: int) -> None:
        os.kill(self.infra.named["redis"].pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.infra.named.pop("redis").wait()


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis()
    redis.start()
    yield redis
    if "redis" in redis.infra.named:
        redis.signal(signal.SIGCONT)
    redis.infra.stop()
