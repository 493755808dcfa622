"""The plot of `make bench`: latency (p50, p99) against load, for the chat fan-out with the bare
Redis pub/sub floor drawn in, and for fresh joins (the fixed rate and saturation). A PNG next to
results.json (matplotlib, Agg backend: no display needed)."""

from pathlib import Path
from typing import Any

from tests.bench import targets as t


def plot(results: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    scenarios = results.get("scenarios", {})
    steps = scenarios.get("fanout", {}).get("steps", [])
    joins = scenarios.get("joins", {})
    if not steps and not joins:
        return None
    fig, (fan, join) = plt.subplots(1, 2, figsize=(13, 5))

    if steps:
        x = [s["frames_per_s"] for s in steps]
        fan.plot(x, [s["ws"]["p50_ms"] for s in steps], "o-", color="tab:blue", label="fan-out p50")
        fan.plot(x, [s["ws"]["p99_ms"] for s in steps], "o-", color="tab:red", label="fan-out p99")
        floor = [s for s in steps if s.get("floor")]
        fx = [s["frames_per_s"] for s in floor]
        fan.plot(
            fx,
            [s["floor"]["p50_ms"] for s in floor],
            "s--",
            color="tab:blue",
            alpha=0.5,
            label="Redis floor p50",
        )
        fan.plot(
            fx,
            [s["floor"]["p99_ms"] for s in floor],
            "s--",
            color="tab:red",
            alpha=0.5,
            label="Redis floor p99",
        )
        for s in steps:
            if s["ws"]["lost"]:
                fan.annotate(
                    f"{s['ws']['lost']} lost",
                    (s["frames_per_s"], s["ws"]["p99_ms"]),
                    textcoords="offset points",
                    xytext=(0, 8),
                    ha="center",
                    fontsize=8,
                )
        fan.axhline(t.FANOUT_P99_MS, color="gray", linestyle=":", label=f"p99 target {t.FANOUT_P99_MS:g} ms")
        fan.axvline(
            t.FANOUT_FRAMES,
            color="gray",
            linestyle="-.",
            alpha=0.5,
            label=f"target {t.FANOUT_FRAMES:,.0f} frames/s",
        )
        fan.set_yscale("log")
        fan.yaxis.set_major_formatter(plain)
        fan.set_xlabel("frames/s offered (posts/s × members)")
        fan.set_ylabel("latency, POST sent → frame received (ms)")
        fan.set_title(f"chat fan-out, {steps[0]['ws']['receivers']} sockets in one room")
        fan.grid(True, which="both", alpha=0.3)
        fan.legend(fontsize=8)
    else:
        fan.set_visible(False)

    points = [(name, joins[name]) for name in ("paced", "saturation") if name in joins]
    points.sort(key=lambda point: point[1]["ok_rps"])
    if points:
        x = [r["ok_rps"] for _, r in points]
        join.plot(x, [r["p50_ms"] for _, r in points], "o-", color="tab:blue", label="p50")
        join.plot(x, [r["p99_ms"] for _, r in points], "o-", color="tab:red", label="p99")
        for name, r in points:
            join.annotate(
                "fixed rate" if name == "paced" else "saturation",
                (r["ok_rps"], r["p99_ms"]),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=8,
            )
        join.axhline(t.JOIN_P99_MS, color="gray", linestyle=":", label=f"p99 limit {t.JOIN_P99_MS:g} ms")
        join.set_yscale("log")
        join.yaxis.set_major_formatter(plain)
        join.set_xlabel("fresh joins answered per second")
        join.set_ylabel("latency (ms)")
        join.set_title("fresh joins over many rooms (rooms process, direct)")
        join.grid(True, which="both", alpha=0.3)
        join.legend(fontsize=8)
    else:
        join.set_visible(False)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
