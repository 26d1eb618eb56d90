"""The figures the report, the chart and the targets share: apps in report order, and
medians and overheads taken from one run's raw samples."""

from __future__ import annotations

import statistics
from typing import Any

LABELS = {
    "bare": "bare app (the limit)",
    "starlette": "Starlette `SessionMiddleware` (signed cookie)",
    "starsessions-cookie": "starsessions, cookie store",
    "starsessions-memory": "starsessions, memory store",
    "starsessions-redis": "starsessions, Redis store",
    "sessionware-cookie": "**sessionware, cookie store**",
    "sessionware-memory": "**sessionware, memory store**",
    "sessionware-file": "**sessionware, file store**",
    "sessionware-sqlite": "**sessionware, SQLite store**",
    "sessionware-redis": "**sessionware, Redis store**",
    "sessionware-postgres": "**sessionware, PostgreSQL store**",
    "sessionware-mysql": "**sessionware, MariaDB store**",
    "sessionware-memcached": "**sessionware, Memcached store**",
    "sessionware-cookie-explicit": "**sessionware, cookie store, explicit mode**",
    "sessionware-memory-explicit": "**sessionware, memory store, explicit mode**",
    "sessionware-file-explicit": "**sessionware, file store, explicit mode**",
    "sessionware-sqlite-explicit": "**sessionware, SQLite store, explicit mode**",
    "sessionware-redis-explicit": "**sessionware, Redis store, explicit mode**",
    "sessionware-postgres-explicit": "**sessionware, PostgreSQL store, explicit mode**",
    "sessionware-mysql-explicit": "**sessionware, MariaDB store, explicit mode**",
    "sessionware-memcached-explicit": "**sessionware, Memcached store, explicit mode**",
    "flask-bare": "Flask, no session (the limit)",
    "flask-cookie": "Flask's own signed-cookie session",
    "flask-session-redis": "Flask-Session, Redis",
    "sessionware-wsgi-cookie": "**sessionware WSGI, cookie store**",
    "sessionware-wsgi-redis": "**sessionware WSGI, Redis store**",
}
CELL_TITLES = {
    "noop-nocookie": "/noop, no cookie",
    "noop": "/noop",
    "read": "/read",
    "write": "/write",
}


def ordered(table: dict[str, Any]) -> list[str]:
    """Apps in the order of ``LABELS`` (the bare app first, peers, then sessionware)."""
    rank = {name: index for index, name in enumerate(LABELS)}
    return sorted(table, key=lambda app: rank.get(app, len(rank)))


def median_table(samples: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    return {
        app: {c: statistics.median(samples[app][c]) for c in CELL_TITLES if c in samples[app]}
        for app in ordered(samples)
    }


def overheads(block: dict[str, Any], bare: str, cpu: bool = False) -> dict[str, dict[str, float]]:
    """app minus bare per cell: the median of paired differences when the run has them
    (each app cell measured right after the bare app's), else the difference of medians."""
    if not cpu and "overheads" in block:
        paired = block["overheads"]
        return {
            app: {c: statistics.median(paired[app][c]) for c in CELL_TITLES if c in paired[app]}
            for app in ordered(paired)
        }
    medians = median_table(block["cpu_samples" if cpu else "samples"])
    base = medians[bare]
    return {app: {c: v - base[c] for c, v in cells.items()} for app, cells in medians.items()}


HTTP_ROUTES = ("noop", "read", "write")


def rps_table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, float]]:
    return {
        app: {r: statistics.median(x["rps"] for x in results[app][r]) for r in HTTP_ROUTES}
        for app in ordered(results)
    }


def p99_table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, dict[str, float]]:
    return {
        app: {r: statistics.median(x["p99_ms"] for x in results[app][r]) for r in HTTP_ROUTES}
        for app in ordered(results)
    }
