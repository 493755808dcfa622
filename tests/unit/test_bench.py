"""The pure parts of `make bench` (tests/bench): reading wrk's output, the lean receivers' frame
and RESP parsing, the trivial server's request counting, and the targets' ok/miss logic."""

import json
import math

import pytest

from tests.bench import targets as t
from tests.bench.lean import (
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RespError,
    close_code,
    frame_marker,
    frame_message_id,
    make_marker,
    parse_marker,
    parse_resp,
    parse_response_head,
    parse_ws_frames,
    resp_command,
    ws_client_frame,
)
from tests.bench.receivers import percentile
from tests.bench.trivial import count_requests
from tests.bench.wrk import parse_wrk_output

WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:8001/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.62ms    3.10ms  93.99ms   90.00%
  13308 requests in 4.00s, 2.1MB read
  Non-2xx or 3xx responses: 8
Requests/sec:   3326.60
Transfer/sec:    530.00KB
WRK_JSON {"requests":13308,"duration_us":4000500,"bytes":2200000,"connect":0,"read":1,"write":0,\
"status":8,"timeout":2,"late":3,"lat_min":480,"lat_mean":9620.5,"lat_max":93990,"p50":9840,\
"p90":12000,"p99":93990,"p999":93990}
"""


def test_wrk_output_is_read_from_the_done_hook_line() -> None:
    result = parse_wrk_output(WRK_OUTPUT)
    assert result.requests == 13308
    assert result.seconds == pytest.approx(4.0005)
    assert result.non_2xx == 8
    assert result.errors == 3  # read + timeout
    assert result.late == 3
    assert result.p50_ms == pytest.approx(9.84)
    assert result.p99_ms == pytest.approx(93.99)
    assert result.max_ms == pytest.approx(93.99)
    assert result.ok == 13300
    assert result.ok_rps == pytest.approx(13300 / 4.0005)
    data = result.as_dict()
    assert data["ok"] == 13300 and data["ok_rps"] == pytest.approx(3324.6, abs=0.1)


def test_wrk_output_without_the_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_wrk_output("Running 4s test @ http://127.0.0.1:1/\nunable to connect\n")


def _server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return bytes([first, len(payload)]) + payload
    if len(payload) < 1 << 16:
        return bytes([first, 126]) + len(payload).to_bytes(2, "big") + payload
    return bytes([first, 127]) + len(payload).to_bytes(8, "big") + payload


def test_ws_frames_of_every_length_form_and_a_partial_tail() -> None:
    small, medium, large = b"a" * 5, b"b" * 300, b"c" * 70_000
    data = (
        _server_frame(OP_TEXT, small)
        + _server_frame(OP_TEXT, medium)
        + _server_frame(OP_TEXT, large)
        + _server_frame(OP_PING, b"p")
    )
    tail = _server_frame(OP_TEXT, b"next one")[:-3]
    frames, used = parse_ws_frames(data + tail)
    assert [(fin, op, len(p)) for fin, op, p in frames] == [
        (True, OP_TEXT, 5),
        (True, OP_TEXT, 300),
        (True, OP_TEXT, 70_000),
        (True, OP_PING, 1),
    ]
    assert frames[1][2] == medium
    assert used == len(data)
    # The rest arrives: parsing goes on from where it stopped.
    rest, used2 = parse_ws_frames(data + _server_frame(OP_TEXT, b"next one"), used)
    assert rest == [(True, OP_TEXT, b"next one")]


def test_ws_frames_cut_inside_an_extended_length_wait_for_more() -> None:
    frame = _server_frame(OP_TEXT, b"x" * 200)
    for cut in range(len(frame)):
        frames, used = parse_ws_frames(frame[:cut])
        assert (frames, used) == ([], 0)


def test_ws_client_frames_are_masked_and_read_back() -> None:
    payload = b'{"type":"pong"}' * 20
    frame = ws_client_frame(OP_TEXT, payload, mask_key=b"\x01\x02\x03\x04")
    assert frame[1] & 0x80  # the mask bit
    assert payload not in frame
    frames, used = parse_ws_frames(frame)
    assert frames == [(True, OP_TEXT, payload)] and used == len(frame)
    close = ws_client_frame(OP_CLOSE, (4403).to_bytes(2, "big"))
    assert close_code(parse_ws_frames(close)[0][0][2]) == 4403


def test_a_chat_frame_yields_its_marker_and_message_id() -> None:
    content = make_marker(7, 42, 123_456_789, 64)
    assert len(content) == 64 and content.startswith("b:7:42:123456789:")
    frame = json.dumps(
        {
            "type": "message.created",
            "message": {
                "id": "01890a5d-ac96-774b-bcce-b302099a8057",
                "room_id": "7d1c0000-0000-4000-8000-0000000000e2",
                "sender_id": "11111111-2222-4333-8444-555555555555",
                "display_name": "Member",
                "message_type": "user",
                "content": content,
                "created_at": "2026-11-25T18:00:00.123Z",
                "edited_at": None,
                "system": None,
            },
        },
        separators=(",", ":"),
    ).encode()
    assert frame_marker(frame) == (7, 42, 123_456_789)
    assert frame_message_id(frame) == b"01890a5d-ac96-774b-bcce-b302099a8057"
    system = b'{"type":"message.created","message":{"id":"x","content":"Anna joined"}}'
    assert frame_marker(system) is None
    assert frame_marker(b'{"type":"ready","participant":{"id":"p"}}') is None
    assert parse_marker(b"b:1:2") is None and parse_marker(b"b:one:2:3:") is None


def test_resp_push_messages_and_replies() -> None:
    payload = make_marker(3, 9, 555, 40).encode()
    data = (
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
        + b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n" % (len(payload), payload)
        + b":100\r\n+OK\r\n-ERR wrong\r\n$-1\r\n"
    )
    partial = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$40\r\nb:3:10"
    values, used = parse_resp(data + partial)
    assert values[0] == [b"subscribe", b"ch", 1]
    assert values[1] == [b"message", b"ch", payload]
    assert parse_marker(values[1][2]) == (3, 9, 555)
    assert values[2:4] == [100, "OK"]
    assert isinstance(values[4], RespError) and str(values[4]) == "ERR wrong"
    assert values[5] is None
    assert used == len(data)  # the partial message stays in the buffer


def test_resp_command() -> None:
    assert resp_command("PUBLISH", "ch", b"hi") == b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n"
    assert parse_resp(resp_command("SUBSCRIBE", "ch"))[0] == [[b"SUBSCRIBE", b"ch"]]


def test_response_head() -> None:
    head = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 42\r\n\r\n"
    assert parse_response_head(head) == (201, 42, False)
    assert parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") == (200, 0, True)


def test_trivial_server_counts_whole_requests() -> None:
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b'POST /j HTTP/1.1\r\nContent-Length: 9\r\nHost: x\r\n\r\n{"a":"b"}'
    assert count_requests(get + post) == (2, len(get + post))
    assert count_requests(get + post[:-2]) == (1, len(get))  # the body has not arrived whole
    assert count_requests(b"GET / HTTP/1.1\r\nHost") == (0, 0)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([5.0], 99) == 5.0
    assert math.isnan(percentile([], 50))


# --- targets ------------------------------------------------------------------------------------


def _wrk(ok_rps: float, p50: float = 1.0, p99: float = 2.0, non_2xx: int = 0, **extra: object) -> dict:
    return {
        "ok_rps": ok_rps,
        "rps": ok_rps,
        "ok": int(ok_rps * 4),
        "p50_ms": p50,
        "p99_ms": p99,
        "non_2xx": non_2xx,
        **extra,
    }


def _step(frames: int, p99: float, lost: int = 0, floor_p99: float = 1.0) -> dict:
    return {
        "frames_per_s": frames,
        "achieved_frames_per_s": frames * 0.99,
        "post": {"failed": 0},
        "ws": {"p50_ms": p99 / 2, "p99_ms": p99, "lost": lost, "closed": 0, "receivers": 100},
        "floor": {"p50_ms": floor_p99 / 2, "p99_ms": floor_p99, "lost": 0},
    }


def _results() -> dict:
    return {
        "ceiling": {"static": {"rps": 100_000.0}, "dynamic": {"rps": 80_000.0}},
        "scenarios": {
            "healthz": {"rooms": _wrk(3000), "chat": _wrk(4000)},
            "history": _wrk(1200),
            "joins": {
                "saturation": _wrk(300, memberships=1300),
                "paced": {**_wrk(118, p99=40), "rate": 120.0},
            },
            "joins_single_room": {**_wrk(350), "rooms_used": 15},
            "gateway": {"gateway": _wrk(900, p50=1.1), "direct": _wrk(1000, p50=1.0)},
            "fanout": {"steps": [_step(2000, 3.0), _step(10000, 20), _step(20000, 90), _step(25000, 150)]},
        },
    }


def test_targets_ok_and_miss() -> None:
    targets = t.build_targets(_results())
    found = {target.name: target for target in targets}
    assert len(found) == 7
    fanout = found["fan-out from one chat process"]
    assert fanout.ok and fanout.measured == 20000  # the 20k step passed, the 25k one did not
    floor = found["fan-out p99 at 2,000 frames/s vs Redis floor"]
    assert not floor.ok and floor.measured == pytest.approx(3.0)  # 3 ms vs 1 ms floor: > 2×
    joins = found["fresh joins, many rooms (saturation)"]
    assert joins.ok and joins.measured == pytest.approx(0.1)  # 300 of 3000
    paced = next(v for k, v in found.items() if k.startswith("join p99"))
    assert paced.ok and paced.measured == 40
    assert found["fresh joins into a single room"].ok
    history = found["history page (limit=50) vs chat /healthz"]
    assert history.ok and history.measured == pytest.approx(0.3)
    gateway = found["gateway vs direct, GET room, p50"]
    assert gateway.ok and gateway.measured == pytest.approx(1.1)
    table = t.format_table(targets)
    assert table.count("MISS") == 1 and "3.00×" in table


def test_targets_boundaries_and_invalid_runs() -> None:
    results = _results()
    scenarios = results["scenarios"]
    scenarios["gateway"]["gateway"]["p50_ms"] = 1.151
    scenarios["history"]["non_2xx"] = 5  # a page that was refused does not count
    scenarios["history"]["sample_failure"] = '503 {"code":"unavailable"}'
    scenarios["joins"]["paced"]["ok_rps"] = 100  # the fixed rate was not kept
    scenarios["joins"]["saturation"]["memberships"] = 10  # not every join was fresh
    scenarios["joins_single_room"]["ok_rps"] = 300  # exactly the target is enough
    found = {target.name: target for target in t.build_targets(results)}
    assert not found["gateway vs direct, GET room, p50"].ok
    history = found["history page (limit=50) vs chat /healthz"]
    assert not history.ok and history.note == "5 non-2xx answers, e.g. 503"
    assert not next(v for k, v in found.items() if k.startswith("join p99")).ok
    assert not found["fresh joins, many rooms (saturation)"].ok
    assert found["fresh joins into a single room"].ok
    assert not t.Target("x", "", "", None, ">=", 1).ok
    assert not t.Target("x", "", "", float("nan"), "<=", 1).ok


def test_fanout_capacity_stops_at_the_first_failed_step() -> None:
    # A loss at 10k: the 20k step that passed later does not count.
    steps = [_step(2000, 3), _step(10000, 20, lost=1), _step(20000, 50)]
    assert t.fanout_capacity(steps) == (2000, steps[0])
    assert t.fanout_capacity([_step(2000, 101)]) == (None, None)
    slow = _step(2000, 3)
    slow["achieved_frames_per_s"] = 1800  # the posts fell behind their schedule
    assert t.fanout_capacity([slow]) == (None, None)
    results = {"scenarios": {"fanout": {"steps": [_step(2000, 101)]}}}
    fanout = t.build_targets(results)[0]
    assert not fanout.ok and fanout.value == "no step passed"


def test_client_bound_warning_at_80_percent_of_the_ceiling() -> None:
    results = _results()
    assert t.client_bound_warnings(results) == []
    results["scenarios"]["healthz"]["rooms"]["rps"] = 80_000.0
    warnings = t.client_bound_warnings(results)
    assert len(warnings) == 1 and warnings[0].startswith("rooms /healthz") and "client-bound" in warnings[0]
