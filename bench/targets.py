"""The issue's targets, checked against one run's own numbers (ratios, never absolute times)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from .tables import overheads

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


# sessionware app -> the floors of its store (see ``floors``)
FLOOR_OF = {
    "sessionware-redis": "redis",
    "sessionware-postgres": "postgres",
    "sessionware-mysql": "mysql",
    "sessionware-sqlite": "sqlite",
    "sessionware-memcached": "memcached",
}


def beyond_floor(main: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per server-side store and route: overhead over the bare app minus the floor of the
    route (/noop and /read load once: ``-read``; /write loads and saves: ``-write``)."""
    floors = main.get("floors", {}).get("samples", {})
    if not floors:
        return {}
    over = _overheads(main)
    out: dict[str, dict[str, float]] = {}
    for app, store in FLOOR_OF.items():
        read, write = floors.get(f"{store}-read"), floors.get(f"{store}-write")
        if app not in over or read is None or write is None:
            continue
        floor = {"noop": read, "read": read, "write": write}
        out[app] = {r: over[app][r] - statistics.median(floor[r]) for r in ROUTES}
    return out


def _beyond_check(
    target: str, beyond: dict[str, dict[str, float]], app: str, limit: dict[str, float]
) -> Check:
    if app not in beyond:
        return Check(target, "—", None)
    cells = beyond[app]
    measured = ", ".join(f"/{r} {cells[r]:+.1f} µs" for r in limit)
    return Check(target, measured, all(cells[r] <= limit[r] for r in limit))


def evaluate(main: dict[str, Any], scale: dict[str, Any] | None) -> list[Check]:
    over = _overheads(main)
    checks = []

    ours = {
        a: o["noop-nocookie"]
        for a, o in over.items()
        if a.startswith("sessionware-") and "noop-nocookie" in o
    }
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
    beyond = beyond_floor(main)
    checks.append(
        _beyond_check(
            "PostgreSQL under ASGI: overhead beyond the raw async floor (psycopg `SELECT`) "
            "≤ 30 µs on /read",
            beyond,
            "sessionware-postgres",
            {"read": 30.0},
        )
    )
    checks.append(
        Check(
            f"PostgreSQL over HTTP: /read ≥ 1.5{TIMES} the throughput of the last tagged commit",
            "no tagged commit to serve beside this tree (see `git tag`)",
            None,
        )
    )
    checks.append(_lazy_check(main, over))
    checks.append(_wsgi_redis_check(main))
    checks.append(
        Check(
            f"WSGI: memory ≤ 0.5{TIMES} Beaker's overhead on /read and /write",
            "Beaker is not among this bench's peers",
            None,
        )
    )
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
        _beyond_check(
            "Redis: overhead beyond the raw floor (`HGETALL`; `HGETALL` + `EVALSHA` on "
            "/write) ≤ 15 µs on /noop and /read, ≤ 25 µs on /write",
            beyond_floor(main),
            "sessionware-redis",
            {"noop": 15.0, "read": 15.0, "write": 25.0},
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
                f"Redis over HTTP: ≥ 2{TIMES} starsessions' throughput on /read",
                ", ".join(f"/{r} {ratio[r]:.2f}{TIMES}" for r in ROUTES),
                ratio["read"] >= 2.0,
            )
        )
    else:
        checks.append(Check(f"Redis over HTTP: ≥ 2{TIMES} starsessions' throughput", "—", None))
    return checks


def _lazy_check(main: dict[str, Any], over: dict[str, dict[str, float]]) -> Check:
    """/noop with a session cookie, session never used: ASGI explicit mode, lazy WSGI."""
    found = {
        app.removeprefix("sessionware-").removesuffix("-explicit"): cells["noop"]
        for app, cells in over.items()
        if app.endswith("-explicit")
    }
    if "wsgi_inprocess" in main:
        wsgi = overheads(main["wsgi_inprocess"], "flask-bare")
        for app, cells in wsgi.items():
            if app.startswith("sessionware-wsgi-"):
                found[app.removeprefix("sessionware-")] = cells["noop"]
    target = "cookie-carrying /noop, ASGI explicit mode and lazy WSGI: ≤ +3 µs on every store"
    if not found:
        return Check(target, "—", None)
    worst = max(found, key=lambda name: found[name])
    measured = f"worst +{found[worst]:.1f} µs ({worst}); " + ", ".join(
        f"{name} +{value:.1f}" for name, value in found.items()
    )
    return Check(target, measured, found[worst] <= 3.0)


def _wsgi_redis_check(main: dict[str, Any]) -> Check:
    target = f"WSGI: Redis /read ≤ 0.5{TIMES} Flask-Session's overhead (Beaker: not in this bench)"
    if "wsgi_inprocess" not in main:
        return Check(target, "—", None)
    wsgi = overheads(main["wsgi_inprocess"], "flask-bare")
    ours, theirs = wsgi.get("sessionware-wsgi-redis"), wsgi.get("flask-session-redis")
    if ours is None or theirs is None:
        return Check(target, "—", None)
    ratio = ours["read"] / theirs["read"]
    return Check(target, f"/read {ratio:.2f}{TIMES}", ratio <= 0.5)


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
