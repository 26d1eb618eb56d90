"""The issue's targets, checked against one run's own numbers (ratios, never absolute times)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

ROUTES = ("noop", "read", "write")
SCALE_RATIO = 1.5
STALL_MS = 100.0
FLAT_RATIO = 1.1
TIMES = "\u00d7"  # the multiplication sign of ratios


@dataclass(frozen=True)
class Check:
    target: str
    measured: str
    ok: bool | None


def _overheads(main: dict[str, Any]) -> dict[str, dict[str, float]]:
    from .report import overheads

    return overheads(main["asgi_inprocess"], "bare")


def _ratios(over: dict[str, dict[str, float]], ours: str, theirs: str) -> dict[str, float] | None:
    if ours not in over or theirs not in over:
        return None
    return {r: over[ours][r] / over[theirs][r] for r in ROUTES}


def _ratio_check(target: str, ratios: dict[str, float] | None, limit: dict[str, float]) -> Check:
    if ratios is None:
        return Check(target, "—", None)
    measured = ", ".join(f"/{r} {ratios[r]:.2f}{TIMES}" for r in ROUTES if r in limit)
    return Check(target, measured, all(ratios[r] <= limit[r] for r in limit))


def evaluate(main: dict[str, Any], scale: dict[str, Any] | None) -> list[Check]:
    over = _overheads(main)
    checks = []

    ours = {a: o["noop-nocookie"] for a, o in over.items() if a.startswith("sessionware-")}
    worst = max(ours, key=lambda a: ours[a])
    checks.append(
        Check(
            "no session cookie: ≤ 2 µs over the bare app (every sessionware store)",
            f"worst +{ours[worst]:.1f} µs ({worst}); "
            + ", ".join(f"{a.removeprefix('sessionware-')} +{v:.1f}" for a, v in ours.items()),
            ours[worst] <= 2.0,
        )
    )
    half = dict.fromkeys(ROUTES, 0.5)
    checks.append(
        _ratio_check(
            f"memory store: ≤ 0.5{TIMES} starsessions' memory-store overhead, every route",
            _ratios(over, "sessionware-memory", "starsessions-memory"),
            half,
        )
    )
    cookie = _ratios(over, "sessionware-cookie", "starlette")
    checks.append(
        _ratio_check(
            f"cookie store: ≤ 1{TIMES} Starlette's overhead on every route, ≤ 0.6{TIMES} on /write",
            cookie,
            {"noop": 1.0, "read": 1.0, "write": 0.6},
        )
    )
    checks += _redis_checks(main, over)
    if scale is not None and not scale.get("quick"):
        checks += scale_checks(scale)
    else:
        checks.append(Check("scale targets", "no full scale run yet (`--scale-only`)", None))
    return checks


def _redis_checks(main: dict[str, Any], over: dict[str, dict[str, float]]) -> list[Check]:
    checks = []
    counts = main.get("redis_counts", {}).get("sessionware-redis")
    if counts is not None:
        light = [counts[c] for c in ("noop", "read")]
        checks.append(
            Check(
                "Redis: /noop and /read one round trip and no write",
                ", ".join(
                    f"/{c}: {counts[c]['round_trips']:g} round trip(s), "
                    f"{counts[c]['writes']:g} writing"
                    for c in ("noop", "read")
                ),
                all(x["round_trips"] == 1 and x["writes"] == 0 for x in light),
            )
        )
        write = counts["write"]
        checks.append(
            Check(
                "Redis: /write one load and one save",
                f"{write['round_trips']:g} round trips, {write['writes']:g} writing "
                f"({', '.join(k for k in write['commands'] if not k.startswith('lua:'))})",
                write["round_trips"] == 2 and write["writes"] == 1,
            )
        )
    checks.append(
        _ratio_check(
            f"Redis: overhead ≤ 0.5{TIMES} starsessions' Redis store, every route",
            _ratios(over, "sessionware-redis", "starsessions-redis"),
            dict.fromkeys(ROUTES, 0.5),
        )
    )
    http = main.get("asgi_http", {}).get("results", {})
    if "sessionware-redis" in http and "starsessions-redis" in http:
        ratio = {
            r: statistics.median(x["rps"] for x in http["sessionware-redis"][r])
            / statistics.median(x["rps"] for x in http["starsessions-redis"][r])
            for r in ROUTES
        }
        checks.append(
            Check(
                f"Redis over HTTP: ≥ 2{TIMES} starsessions' throughput, every route",
                ", ".join(f"/{r} {ratio[r]:.2f}{TIMES}" for r in ROUTES),
                all(v >= 2.0 for v in ratio.values()),
            )
        )
    else:
        checks.append(Check(f"Redis over HTTP: ≥ 2{TIMES} starsessions' throughput", "—", None))
    return checks


def scale_checks(scale: dict[str, Any]) -> list[Check]:
    checks = []
    small, large = str(scale["sizes"][0]), str(scale["sizes"][-1])
    parts, ok = [], True
    for kind, by_size in scale["growth"].items():
        for op in ("load", "update"):
            ratio = by_size[large][op]["p50_us"] / by_size[small][op]["p50_us"]
            parts.append(f"{kind} {op} {ratio:.2f}{TIMES}")
            ok = ok and ratio <= SCALE_RATIO
    checks.append(
        Check(
            f"scale: load/save p50 at {int(large):,} within {SCALE_RATIO}{TIMES} of {int(small):,}",
            ", ".join(parts),
            ok,
        )
    )
    parts, ok = [], True
    for kind, purge in scale["purge"].items():
        during = purge["during"]
        worst = max(during[op]["max_us"] for op in ("load", "update")) / 1000
        caused = during.get("worst_unexplained_ms", worst)
        took = "unfinished" if purge.get("clear_s") is None else f"{purge['clear_s']:.0f} s"
        parts.append(f"{kind}: {caused:.0f} ms store-caused ({worst:.0f} ms raw), purge {took}")
        ok = ok and caused <= STALL_MS and purge.get("clear_s") is not None
    checks.append(
        Check(
            f"clear_expired() on {scale['purge']['sqlite']['expired']:,} expired: "
            f"no concurrent request stalls > {STALL_MS:.0f} ms",
            "; ".join(parts),
            ok,
        )
    )
    memory = scale["memory"]
    flat = flatness(memory)
    checks.append(
        Check(
            f"MemoryStore(max_entries={memory['max_entries']:,}): memory flat",
            f"{memory['bytes_per_session']:,.0f} B/session; full-table memory varies "
            f"{flat or float('nan'):.3f}{TIMES} while evicting, "
            f"up to {memory['total']:,} creations",
            flat is not None and flat <= FLAT_RATIO,
        )
    )
    return checks


def flatness(memory: dict[str, Any]) -> float | None:
    """Largest / smallest traced memory over the samples taken while evicting (more
    sessions created than ``max_entries``): 1.0 is perfectly flat."""
    evicting = [
        s["traced_bytes"] for s in memory["samples"] if s["created"] > memory["max_entries"]
    ]
    return max(evicting) / min(evicting) if evicting else None
