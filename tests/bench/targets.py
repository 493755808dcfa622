"""The targets of `make bench` (from the issue), judged on the results of a run, and the final
table. Pure functions of the results dictionary that tests/bench/run.py writes to
.run/bench/results.json, so they can be checked without a stack (tests/unit/test_bench.py)."""

import math
from dataclasses import asdict, dataclass
from typing import Any

FANOUT_FRAMES = 20_000.0  # frames/s from one chat process
FANOUT_P99_MS = 100.0
FANOUT_FLOOR_RATIO = 2.0  # p99(fan-out) / p99(Redis floor) at the first step (2k frames/s)
JOINS_OF_HEALTHZ = 0.08
JOIN_P99_MS = 50.0  # at half the JOINS_OF_HEALTHZ rate
SINGLE_ROOM_JOINS = 300.0
HISTORY_OF_HEALTHZ = 0.25
GATEWAY_P50_RATIO = 1.15
CLIENT_BOUND_SHARE = 0.8  # of the load generator's ceiling


@dataclass
class Target:
    name: str
    need: str  # the target, as a person reads it
    value: str  # the measurement, as a person reads it
    measured: float | None  # the number compared with `limit` (None: not measured)
    op: str  # ">=" or "<="
    limit: float
    ratio: str = ""  # the ratio shown in the table
    note: str = ""  # why a measurement does not count, or what to know about it
    valid: bool = True  # False: the run did not measure what the target asks (a miss)

    @property
    def ok(self) -> bool:
        if not self.valid or self.measured is None or math.isnan(self.measured):
            return False
        return self.measured >= self.limit if self.op == ">=" else self.measured <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def fanout_capacity(steps: list[dict[str, Any]]) -> tuple[float | None, dict[str, Any] | None]:
    """The highest rate (frames/s offered) of a step that passed (step_passes), counting from the
    first step up to the first that failed; and that step."""
    best: tuple[float | None, dict[str, Any] | None] = (None, None)
    for step in steps:
        if not step_passes(step):
            break
        best = (float(step["frames_per_s"]), step)
    return best


def step_passes(step: dict[str, Any]) -> bool:
    """p99 ≤ 100 ms, nothing lost, no socket closed, every post accepted, and at least 95 % of
    the offered frames/s delivered within the step (the posts kept their schedule)."""
    ws = step["ws"]
    return (
        ws["p99_ms"] <= FANOUT_P99_MS
        and ws["lost"] == 0
        and ws["closed"] == 0
        and step["post"]["failed"] == 0
        and step["achieved_frames_per_s"] >= 0.95 * step["frames_per_s"]
    )


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base or math.isnan(value) or math.isnan(base):
        return None
    return value / base


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def build_targets(results: dict[str, Any]) -> list[Target]:
    targets: list[Target] = []
    scenarios = results.get("scenarios", {})
    healthz = scenarios.get("healthz", {})
    rooms_healthz = healthz.get("rooms", {}).get("ok_rps")
    chat_healthz = healthz.get("chat", {}).get("ok_rps")

    fanout = scenarios.get("fanout")
    if fanout is not None:
        steps = fanout.get("steps", [])
        best, step = fanout_capacity(steps)
        note = ""
        if steps and (step is None or step is steps[-1]) and not _any_failed(steps):
            note = "no step failed: the last step is not the limit"
        targets.append(
            Target(
                name="fan-out from one chat process",
                need=f"≥ {FANOUT_FRAMES:,.0f} frames/s, p99 ≤ {FANOUT_P99_MS:g} ms, 0 lost",
                value=(
                    f"{_fmt(best, ',.0f')} frames/s (delivered {step['achieved_frames_per_s']:,.0f}, "
                    f"p99 {_fmt(step['ws']['p99_ms'])} ms)"
                    if step
                    else "no step passed"
                ),
                measured=best if best is not None else 0.0,
                op=">=",
                limit=FANOUT_FRAMES,
                ratio=f"{(best or 0) / FANOUT_FRAMES:.2f}× target",
                note=note,
            )
        )
        if steps:
            first = steps[0]
            ratio = _ratio(first["ws"]["p99_ms"], first["floor"]["p99_ms"] if first.get("floor") else None)
            targets.append(
                Target(
                    name=f"fan-out p99 at {first['frames_per_s']:,.0f} frames/s vs Redis floor",
                    need=f"≤ {FANOUT_FLOOR_RATIO:g}× floor p99",
                    value=(
                        f"{_fmt(first['ws']['p99_ms'])} ms vs "
                        f"{_fmt(first.get('floor', {}).get('p99_ms'), '.2f')} ms"
                    ),
                    measured=ratio,
                    op="<=",
                    limit=FANOUT_FLOOR_RATIO,
                    ratio=f"{_fmt(ratio, '.2f')}×",
                    valid=first["ws"]["lost"] == 0,
                    note="" if first["ws"]["lost"] == 0 else f"{first['ws']['lost']} frames lost",
                )
            )

    joins = scenarios.get("joins", {})
    saturation = joins.get("saturation")
    if saturation is not None:
        ratio = _ratio(saturation["ok_rps"], rooms_healthz)
        fresh = saturation.get("memberships", saturation["ok"]) >= saturation["ok"]
        targets.append(
            Target(
                name="fresh joins, many rooms (saturation)",
                need=f"≥ {JOINS_OF_HEALTHZ:.0%} of rooms /healthz",
                value=f"{saturation['ok_rps']:.0f}/s vs {_fmt(rooms_healthz, '.0f')}/s",
                measured=ratio,
                op=">=",
                limit=JOINS_OF_HEALTHZ,
                ratio=f"{_fmt(None if ratio is None else ratio * 100, '.1f')} %",
                valid=fresh,
                note=_join(
                    "" if fresh else "fewer memberships than 2xx answers: not every join was fresh",
                    _failures(saturation),
                ),
            )
        )
    paced = joins.get("paced")
    if paced is not None:
        rate = paced["rate"]
        kept = paced["ok_rps"] >= 0.9 * rate
        targets.append(
            Target(
                name=f"join p99 at {rate:.0f}/s (half of {JOINS_OF_HEALTHZ:.0%} of healthz)",
                need=f"≤ {JOIN_P99_MS:g} ms",
                value=f"{paced['p99_ms']:.1f} ms at {paced['ok_rps']:.0f}/s",
                measured=paced["p99_ms"],
                op="<=",
                limit=JOIN_P99_MS,
                ratio=f"{paced['p99_ms'] / JOIN_P99_MS:.2f}× limit",
                valid=kept,
                note=_join(
                    "" if kept else f"only {paced['ok_rps']:.0f} of {rate:.0f}/s answered with a 2xx",
                    _failures(paced),
                ),
            )
        )
    single = scenarios.get("joins_single_room")
    if single is not None:
        targets.append(
            Target(
                name="fresh joins into a single room",
                need=f"≥ {SINGLE_ROOM_JOINS:g}/s",
                value=f"{single['ok_rps']:.0f}/s ({single['rooms_used']} rooms filled in turn)",
                measured=single["ok_rps"],
                op=">=",
                limit=SINGLE_ROOM_JOINS,
                ratio=f"{single['ok_rps'] / SINGLE_ROOM_JOINS:.2f}× target",
                note=_failures(single),
            )
        )
    history = scenarios.get("history")
    if history is not None:
        ratio = _ratio(history["ok_rps"], chat_healthz)
        targets.append(
            Target(
                name="history page (limit=50) vs chat /healthz",
                need=f"≥ {HISTORY_OF_HEALTHZ:.0%} of chat /healthz",
                value=f"{history['ok_rps']:.0f}/s vs {_fmt(chat_healthz, '.0f')}/s",
                measured=ratio,
                op=">=",
                limit=HISTORY_OF_HEALTHZ,
                ratio=f"{_fmt(None if ratio is None else ratio * 100, '.1f')} %",
                valid=history["non_2xx"] == 0,
                note=_failures(history),
            )
        )
    gateway = scenarios.get("gateway")
    if gateway is not None:
        ratio = _ratio(gateway["gateway"]["p50_ms"], gateway["direct"]["p50_ms"])
        bad = gateway["gateway"].get("non_2xx", 0) or gateway["direct"].get("non_2xx", 0)
        targets.append(
            Target(
                name="gateway vs direct, GET room, p50",
                need=f"≤ {GATEWAY_P50_RATIO:g}× direct",
                value=f"{gateway['gateway']['p50_ms']:.2f} ms vs {gateway['direct']['p50_ms']:.2f} ms",
                measured=ratio,
                op="<=",
                limit=GATEWAY_P50_RATIO,
                ratio=f"{_fmt(ratio, '.2f')}×",
                valid=not bad,
                note=_join(_failures(gateway["gateway"]), _failures(gateway["direct"])),
            )
        )
    return targets


def _failures(result: dict[str, Any]) -> str:
    """ "N non-2xx answers, e.g. 503" (the status of the request made again), or ""."""
    if not result.get("non_2xx"):
        return ""
    sample = (result.get("sample_failure") or "").split(" ", 1)[0]
    return f"{result['non_2xx']} non-2xx answers" + (f", e.g. {sample}" if sample else "")


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _any_failed(steps: list[dict[str, Any]]) -> bool:
    return any(not step_passes(step) for step in steps)


def client_bound_warnings(results: dict[str, Any]) -> list[str]:
    """A warning for each closed-loop wrk measurement that reached 80 % of the load generator's
    ceiling measured in the same run (it may then be wrk's limit, not the service's)."""
    ceiling = results.get("ceiling", {})
    scenarios = results.get("scenarios", {})
    checks = [
        ("rooms /healthz", scenarios.get("healthz", {}).get("rooms"), "static"),
        ("chat /healthz", scenarios.get("healthz", {}).get("chat"), "static"),
        ("history page", scenarios.get("history"), "static"),
        ("fresh joins", scenarios.get("joins", {}).get("saturation"), "dynamic"),
        ("single-room joins", scenarios.get("joins_single_room"), "dynamic"),
        ("GET room (gateway)", scenarios.get("gateway", {}).get("gateway"), "static"),
        ("GET room (direct)", scenarios.get("gateway", {}).get("direct"), "static"),
    ]
    warnings = []
    for name, result, kind in checks:
        top = ceiling.get(kind, {}).get("rps")
        if result is None or not top:
            continue
        if result["rps"] >= CLIENT_BOUND_SHARE * top:
            warnings.append(
                f"{name}: {result['rps']:.0f} req/s is {result['rps'] / top:.0%} of the load "
                f"generator's ceiling ({top:.0f} req/s): client-bound, the figure is a lower bound"
            )
    return warnings


def format_table(targets: list[Target]) -> str:
    rows = [("target", "measured", "ratio", "need", "result")]
    for target in targets:
        result = "ok" if target.ok else "MISS"
        if target.note:
            result += f" ({target.note})"
        rows.append((target.name, target.value, target.ratio, target.need, result))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    return "\n".join(lines)
