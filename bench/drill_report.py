"""The figures of a failover drill, from its request records and its events."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

BUCKET = 0.25  # seconds per throughput bucket
#: Recovered: this many seconds in a row at this share of the throughput before the fault.
STEADY_SECONDS, STEADY_SHARE = 1.0, 0.8


def summarize(result: dict[str, Any], timeout: float) -> dict[str, Any]:
    """The figures of one drill; times are seconds after the fault (kill or cut)."""
    fault = result["events"]["fault"]
    records = [
        (s - fault, e - fault, route, status) for s, e, route, status, _ in result["records"]
    ]
    failed = [r for r in records if r[3] != 200 and r[1] > -1.0]
    statuses: dict[str, int] = {}
    for *_, status in records:
        name = str(status)
        statuses[name] = statuses.get(name, 0) + 1
    latencies = [end - start for start, end, _, _ in records]
    timeline = _timeline(records)
    baseline = statistics.median([ok for t, ok, _ in timeline if -5.0 <= t < -0.5] or [0.0])
    resumed_from = (
        result["events"].get("restored", 0.0) - fault if "restored" in result["events"] else 0.0
    )
    return {
        "requests": len(records),
        "statuses": statuses,
        "status_500": statuses.get("500", 0),
        "status_503": statuses.get("503", 0),
        "hangs": statuses.get("hang", 0),
        "window": (min(r[0] for r in failed), max(r[1] for r in failed)) if failed else None,
        "slowest": max(latencies) if latencies else 0.0,
        "over_timeout": sum(1 for latency in latencies if latency > timeout + 0.5),
        "baseline_rps": baseline / BUCKET,
        "recovered_after": _recovered(timeline, baseline, max(0.0, resumed_from)),
        "acknowledged": result["acknowledged"],
        "lost": len(result["lost"]),
        "unverified": result["unverified"],
        "logins_not_taken": result["logins_not_taken"],
        "lockouts": result["lockouts"],
        "status_401": statuses.get("401", 0),
        "logged_out": result["logged_out"],
        "came_back": len(result["came_back"]),
        "events": {name: at - fault for name, at in result["events"].items()},
        "timeline": timeline,
    }


def _timeline(records: list[tuple[float, float, str, Any]]) -> list[tuple[float, int, int]]:
    """``(bucket start, answered 200, answered otherwise)`` by end time."""
    if not records:
        return []
    first = min(end for _, end, _, _ in records)
    counts: dict[int, list[int]] = {}
    for _, end, _, status in records:
        slot = counts.setdefault(int((end - first) // BUCKET), [0, 0])
        slot[0 if status == 200 else 1] += 1
    last = max(counts)
    return [
        (first + index * BUCKET, *counts.get(index, [0, 0]))  # type: ignore[misc]
        for index in range(last + 1)
    ]


def _recovered(
    timeline: list[tuple[float, int, int]], baseline: float, after: float
) -> float | None:
    """Seconds after the fault until throughput held ``STEADY_SHARE`` of the baseline for
    ``STEADY_SECONDS`` (counted from ``after``, the restore of a partition)."""
    need = int(STEADY_SECONDS / BUCKET)
    run = 0
    for index, (start, ok, _) in enumerate(timeline):
        if start < after:
            continue
        run = run + 1 if ok >= STEADY_SHARE * baseline else 0
        if run == need:
            return timeline[index - need + 1][0]
    return None


def draw(drills: list[dict[str, Any]], path: Path) -> None:
    """One panel per drill: answered requests per second, 200 and otherwise."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    fig, axes = plt.subplots(len(drills), 1, figsize=(10, 2.3 * len(drills)), sharex=True)
    for ax, drill in zip(axes if len(drills) > 1 else [axes], drills, strict=True):
        figures = drill["figures"]
        times = [t for t, _, _ in figures["timeline"]]
        ax.plot(
            times, [ok / BUCKET for _, ok, _ in figures["timeline"]], color="#2171b5", label="200/s"
        )
        ax.plot(
            times,
            [bad / BUCKET for _, _, bad in figures["timeline"]],
            color="#d94801",
            label="errors/s (503)",
        )
        for name, at in figures["events"].items():
            ax.axvline(at, color="#888888", linestyle=":", linewidth=1)
            ax.text(at, ax.get_ylim()[1] * 0.92, f" {name}", fontsize=7, color="#555555")
        ax.set_title(drill["title"], loc="left", fontsize=10)
        ax.set_ylabel("requests/s")
        ax.set_xlim(-6, 14)
        ax.legend(loc="lower left", fontsize=7)
    axes_list = axes if len(drills) > 1 else [axes]
    axes_list[-1].set_xlabel("seconds after the fault")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
