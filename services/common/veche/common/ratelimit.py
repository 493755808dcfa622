"""Rate limits shared by every replica, counted in Redis with the `limits` library.

Limits are configured in the `limits` notation ("10/minute", "20/10seconds"). Over a limit
the caller gets `429 rate_limited` with `Retry-After` in whole seconds."""

import math
import re
import time
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.aio.storage import RedisClusterStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from veche.common.clients import redis_retry
from veche.common.errors import RateLimited, Unavailable, is_dependency_error, send_problem
from veche.common.settings import CommonSettings

RATE_KEY_PREFIX = "veche:rate"


def room_limit_key(settings: CommonSettings, room_id: str) -> str:
    """The Redis key counting RATE_LIMIT_ROOM for one room (deleted when the room ends)."""
    return f"{RATE_KEY_PREFIX}:{parse(settings.rate_limit_room).key_for('room', room_id.lower())}"


def _storage_uri(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"async+{scheme}://{rest}"


def _cluster_storage_uri(seeds: list[str]) -> str:
    """`limits`' notation for a cluster: the first seed's scheme and credentials, then every
    seed's host:port, comma-separated."""
    scheme, first = seeds[0].split("://", 1)
    credentials = first.rpartition("@")[0]
    hosts = ",".join(urlsplit(url).netloc.rpartition("@")[2] for url in seeds)
    return f"async+{scheme}+cluster://{credentials + '@' if credentials else ''}{hosts}"


class RateLimits:
    def __init__(self, settings: CommonSettings) -> None:
        self.settings = settings
        # Typed loosely by `limits`; passed on to the redis-py client.
        retry: dict[str, Any] = {"retry": redis_retry()}
        if settings.redis_cluster_seeds:
            storage: RedisStorage | RedisClusterStorage = RedisClusterStorage(
                _cluster_storage_uri(settings.redis_cluster_seeds),
                implementation="redispy",
                key_prefix=RATE_KEY_PREFIX,
                socket_timeout=settings.dependency_timeout_seconds,
                **retry,
            )
        else:
            storage = RedisStorage(
                _storage_uri(settings.redis_url),
                implementation="redispy",
                key_prefix=RATE_KEY_PREFIX,
                socket_timeout=settings.dependency_timeout_seconds,
                **retry,
            )
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self._items: dict[str, RateLimitItem] = {}

    def _item(self, limit: str) -> RateLimitItem:
        item = self._items.get(limit)
        if item is None:
            item = self._items[limit] = parse(limit)
        return item

    async def hit(self, name: str, limit: str, key: str) -> None:
        """Counts one request of `key` against `limit`; raises RateLimited when over it."""
        if not self.settings.rate_limits_enabled:
            return
        item = self._item(limit)
        if await self.limiter.hit(item, name, key):
            return
        reset_at, _ = await self.limiter.get_window_stats(item, name, key)
        retry_after = max(1, math.ceil(reset_at - time.time()))
        raise RateLimited(retry_after, f"Too many requests ({limit}); retry in {retry_after} s")


_ROOM_PATH = re.compile(r"^/api/v1/rooms/([0-9a-fA-F-]{36})(?:/|$)")


class RoomRateLimitMiddleware:
    """RATE_LIMIT_ROOM: all requests about one room, whichever service answers them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = _ROOM_PATH.match(scope["path"])
            limits: RateLimits | None = getattr(scope["app"].state, "rate_limits", None)
            if match and limits is not None:
                settings = limits.settings

                try:
                    await limits.hit("room", settings.rate_limit_room, match.group(1).lower())
                except RateLimited as exc:
                    await send_problem(send, exc)
                    return
                except Exception as exc:
                    if not is_dependency_error(exc):
                        raise
                    await send_problem(send, Unavailable("Rate limits cannot be checked"))
                    return
        await self.app(scope, receive, send)
