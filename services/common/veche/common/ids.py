"""Time-ordered UUIDs (RFC 9562 version 7): sorting by id sorts by creation.

Python 3.11 has no uuid7. The layout: 48 bits of Unix time in ms, the version (7), a 12-bit
counter (RFC 9562 "method 1"), the variant, 62 random bits. Ids made by one generator are
strictly increasing, and `new(after=x)` is strictly greater than x, so a writer that learns of
a larger id made elsewhere (another process, a clock ahead of ours) can still order after it."""

import secrets
import threading
import time
from uuid import UUID

_VERSION = 0x7 << 76
_VARIANT = 0b10 << 62
_COUNTER_MAX = 0xFFF


def timestamp_ms(value: UUID) -> int:
    """The creation time in ms that a UUIDv7 carries in its first 48 bits."""
    return value.int >> 80


def is_uuid7(value: UUID) -> bool:
    return value.version == 7


def parse_uuid7(raw: object) -> UUID | None:
    """The UUIDv7 that `raw` spells (any case, with or without braces), or None."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    try:
        value = UUID(raw.strip())
    except ValueError:
        return None
    return value if is_uuid7(value) else None


def _compose(ms: int, counter: int) -> int:
    return (ms << 80) | _VERSION | (counter << 64) | _VARIANT | secrets.randbits(62)


class Uuid7Generator:
    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def new(self, after: UUID | None = None) -> UUID:
        """A fresh UUIDv7, greater than every id this generator made and than `after`."""
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            floor = max(self._last, after.int if after is not None else 0)
            floor_ms = floor >> 80
            if now_ms > floor_ms:
                # Start a new millisecond with the counter's top bit clear: room to count up.
                value = _compose(now_ms, secrets.randbits(11))
            else:
                # Same (or a later, foreign) millisecond: keep it and step the counter.
                counter = ((floor >> 64) & _COUNTER_MAX) + 1
                if counter > _COUNTER_MAX:
                    value = _compose(floor_ms + 1, secrets.randbits(11))
                else:
                    value = _compose(floor_ms, counter)
            self._last = value
        return UUID(int=value)


_default = Uuid7Generator()


def uuid7(after: UUID | None = None) -> UUID:
    """A UUIDv7 from the process-wide generator (monotonic within the process)."""
    return _default.new(after)
