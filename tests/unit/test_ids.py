"""UUIDv7 ids: time-ordered, monotonic within a process, and above any id they must follow."""

import time
from uuid import UUID

from veche.common.ids import Uuid7Generator, is_uuid7, parse_uuid7, timestamp_ms, uuid7


def test_ids_are_version_7_with_the_rfc_variant_and_the_current_time():
    # A generator of its own: the process-wide one may run a little ahead of the clock after
    # many ids in one millisecond (it never goes back), which other tests may have caused.
    generator = Uuid7Generator()
    before = time.time_ns() // 1_000_000
    value = generator.new()
    after = time.time_ns() // 1_000_000
    assert value.version == 7 and value.variant == "specified in RFC 4122"
    assert before <= timestamp_ms(value) <= after


def test_ids_of_one_generator_strictly_increase_also_within_one_millisecond():
    generator = Uuid7Generator()
    ids = [generator.new() for _ in range(20_000)]
    assert all(a.int < b.int for a, b in zip(ids, ids[1:], strict=False))
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)  # as strings, too
    assert len({timestamp_ms(i) for i in ids}) < len(ids)  # many shared a millisecond


def test_an_id_made_after_a_future_id_sorts_above_it():
    future_ms = time.time_ns() // 1_000_000 + 60_000
    future = UUID(int=(future_ms << 80) | (0x7 << 76) | (0xFFF << 64) | (0b10 << 62))
    later = Uuid7Generator().new(after=future)
    assert later.int > future.int and is_uuid7(later)
    assert timestamp_ms(later) == future_ms + 1  # the counter was full: next millisecond


def test_parse_uuid7_accepts_only_version_7_uuids():
    value = uuid7()
    assert parse_uuid7(str(value).upper()) == value
    assert parse_uuid7("5b05b91f-c2a5-4d3a-8a72-887724459f2d") is None
    assert parse_uuid7("nope") is None
    assert parse_uuid7(None) is None
