"""Overhead of one source tree's sessionware, to compare two commits in the same session.

    git worktree add /tmp/before 2cc3616
    for tree in /tmp/before "$PWD"; do
        PYTHONPATH=$tree .venv/bin/python bench/tree_overhead.py memory,cookie,redis
    done

Run as a file, not with ``-m``, so that ``PYTHONPATH`` decides which sessionware is
imported. Each line is JSON: per store and route, µs per in-process request over a bare
Starlette app (the median of the per-round differences, each cell measured right after
the bare app's same route). Uses only the API both waves share. Alternate the trees two or
three times and compare medians; the machine should be otherwise idle.

``--trees A,B [kinds]`` compares source trees in one command, in whole processes: each
cell is a process that serves 32,000 requests minus one that serves 2,000 (start-up
cancels out), the trees alternate, three times, and the bare app is subtracted::

    .venv/bin/python bench/tree_overhead.py --trees /tmp/before,"$PWD" memory,cookie

``--instructions`` counts CPU instructions instead (under valgrind's callgrind, which
must be installed): per request, the same app's requests minus the bare app's, from two
runs of different lengths, so start-up cancels out. Instruction counts do not move with
the machine's load, so small differences between trees show; they do not see cache misses.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message

import sessionware
from sessionware import SessionMiddleware
from sessionware.stores import CookieStore, MemoryStore, RedisStore

# The bench's own app and routes, from this checkout (whichever tree PYTHONPATH names
# may have another bench); sessionware is imported above, so it stays PYTHONPATH's.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.apps import starlette_app
from bench.config import SECRET

REDIS_URL = "redis://127.0.0.1:6379/11"
ROUTES = ("noop", "read", "write")
ROUNDS, REQUESTS = 7, 2000
_CALLGRIND = ("valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null")


def _app(store: Any) -> ASGIApp:
    if store is None:
        return starlette_app(None)
    return starlette_app([Middleware(SessionMiddleware, store=store, secret_key=SECRET)])


def _store(kind: str) -> Any:
    if kind == "memory":
        return MemoryStore()
    if kind == "cookie":
        return CookieStore()
    if kind == "redis":
        return RedisStore(REDIS_URL, prefix=f"tree-overhead-{time.time_ns()}:")
    raise SystemExit(f"unknown store {kind!r} (memory, cookie, redis)")


async def _run(app: ASGIApp, path: str, n: int, jar: list[bytes | None]) -> float:
    """µs per request; the client keeps its session cookie, as a browser does."""

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    started: list[Message] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            started.append(message)

    begin = time.perf_counter_ns()
    for _ in range(n):
        headers = [(b"host", b"bench")]
        if jar[0] is not None:
            headers.append((b"cookie", jar[0]))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        started.clear()
        await app(scope, receive, send)
        for name, value in started[0]["headers"]:
            if name == b"set-cookie":
                ended = b"max-age=0" in value.lower()
                jar[0] = None if ended else value.split(b";", 1)[0]
    return (time.perf_counter_ns() - begin) / n / 1000


async def _measure(kinds: list[str]) -> dict[str, dict[str, float]]:
    stores = {kind: _store(kind) for kind in kinds}
    bare = _app(None)
    bare_jar: list[bytes | None] = [None]
    apps = {kind: _app(store) for kind, store in stores.items()}
    jars: dict[str, list[bytes | None]] = {kind: [None] for kind in kinds}
    for kind, app in apps.items():  # a session to carry, connections open
        await _run(app, "/write", 1, jars[kind])
        await _run(app, "/read", 300, jars[kind])
    samples: dict[str, dict[str, list[float]]] = {k: {r: [] for r in ROUTES} for k in kinds}
    for _ in range(ROUNDS):
        for route in ROUTES:
            for kind, app in apps.items():
                floor = await _run(bare, f"/{route}", REQUESTS, bare_jar)
                cost = await _run(app, f"/{route}", REQUESTS, jars[kind])
                samples[kind][route].append(cost - floor)
    for store in stores.values():
        if isinstance(store, RedisStore):
            store.delete_all()
            await store.aclose()
    return {
        kind: {route: round(statistics.median(values), 1) for route, values in routes.items()}
        for kind, routes in samples.items()
    }


async def _requests(kind: str, route: str, n: int) -> None:
    """``n`` requests of ``route`` after a first ``/write`` (what callgrind counts)."""
    store = None if kind == "bare" else _store(kind)
    app = _app(store)
    jar: list[bytes | None] = [None]
    await _run(app, "/write", 1, jar)
    await _run(app, f"/{route}", 50, jar)
    await _run(app, f"/{route}", n, jar)
    if isinstance(store, RedisStore):
        store.delete_all()
        await store.aclose()


def _instructions(kind: str, route: str, n: int) -> int:
    done = subprocess.run(
        [*_CALLGRIND, sys.executable, __file__, "--requests", kind, route, str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind: {done.stderr[-500:]}")
    return int(match[1])


def _per_request(kind: str, route: str) -> float:
    short, long = 200, 1200
    return (_instructions(kind, route, long) - _instructions(kind, route, short)) / (long - short)


def _measure_instructions(kinds: list[str]) -> dict[str, dict[str, float]]:
    bare = {route: _per_request("bare", route) for route in ROUTES}
    return {
        kind: {
            route: round((_per_request(kind, route) - bare[route]) / 1000, 1) for route in ROUTES
        }
        for kind in kinds
    }


def _process_us(tree: str, kind: str, route: str) -> float:
    """µs per request of ``kind`` on ``route`` with ``tree``'s sessionware, in whole processes."""

    def run(n: int) -> float:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--requests", kind, route, str(n)],
            env={**os.environ, "PYTHONPATH": tree},
            check=True,
        )
        return time.perf_counter() - started

    short, long = 2_000, 32_000
    return (run(long) - run(short)) / (long - short) * 1e6


def _compare_trees(trees: list[str], kinds: list[str]) -> dict[str, Any]:
    cells: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(3):
        for route in ROUTES:
            cells.setdefault(("bare", "bare", route), []).append(
                _process_us(trees[0], "bare", route)
            )
            for tree in trees:
                for kind in kinds:
                    cells.setdefault((tree, kind, route), []).append(_process_us(tree, kind, route))
    bare = {route: statistics.median(cells["bare", "bare", route]) for route in ROUTES}
    return {
        tree: {
            kind: {
                route: round(statistics.median(cells[tree, kind, route]) - bare[route], 1)
                for route in ROUTES
            }
            for kind in kinds
        }
        for tree in trees
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--trees"]:
        kinds = (argv[2] if len(argv) > 2 else "memory,cookie").split(",")
        compared = _compare_trees(argv[1].split(","), kinds)
        print(json.dumps({"overhead_us_by_tree": compared}))
        return 0
    if argv[:1] == ["--requests"]:
        asyncio.run(_requests(argv[1], argv[2], int(argv[3])))
        return 0
    if argv[:1] == ["--instructions"]:
        kinds = (argv[1] if len(argv) > 1 else "memory,cookie").split(",")
        counted = _measure_instructions(kinds)
        print(json.dumps({"tree": sessionware.__file__, "overhead_k_instructions": counted}))
        return 0
    kinds = (argv[0] if argv else "memory,cookie").split(",")
    result = asyncio.run(_measure(kinds))
    print(json.dumps({"tree": sessionware.__file__, "overhead_us": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
