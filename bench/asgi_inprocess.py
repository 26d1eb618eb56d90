"""The in-process ASGI table: every app x cell, interleaved rounds, on one event loop."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from .apps import EXPLICIT, REDIS_APPS, BuiltApp, build_asgi
from .config import Run
from .floors import Floors
from .inprocess import CELLS, AsgiTimer, Jar, Rounds, cell_path, iterations_for, settle, shuffled
from .redis_count import Counting, Monitor

COUNT_REQUESTS = 100
FLOOR_SECONDS = 0.05  # per floor and round: each floor call is a round trip or two


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when installed (as uvicorn picks it), else asyncio's default loop."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


Counted = dict[str, dict[str, dict[str, Any]]]


def cells_of(name: str) -> tuple[str, ...]:
    """The cells an app is measured on: explicit-mode variants only on /noop."""
    return ("noop",) if name.endswith(EXPLICIT) else CELLS


def run_asgi_inprocess(
    names: list[str], run: Run, rounds: int, seconds: float
) -> tuple[Rounds, Counted, dict[str, Any]]:
    """Timings of every app x cell, Redis commands per request of the Redis apps, and
    the floors (raw client round trips) measured in the same rounds."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(_bench(names, run, rounds, seconds))


async def _bench(
    names: list[str], run: Run, rounds: int, seconds: float
) -> tuple[Rounds, Counted, dict[str, Any]]:
    built = {name: build_asgi(name, run) for name in names}
    timers: dict[tuple[str, str], AsgiTimer] = {}
    result = Rounds()
    counted: Counted = {}
    floors = Floors(run)
    floor_samples: dict[str, list[float]] = {}
    floor_iterations: dict[str, int] = {}
    try:
        await floors.open()
        for name in floors.ops:
            await floors.time(name, 20)
            pace = await floors.time(name, 50)
            floor_iterations[name] = iterations_for(pace, FLOOR_SECONDS, low=50)
        for name, app in built.items():
            jar = await _establish(app)
            for cell in cells_of(name):
                timers[name, cell] = AsgiTimer(app.app, jar)
        # Warm up (connections, caches, first-use table creation), then size each cell.
        for (name, cell), timer in timers.items():
            await timer.run(cell_path(cell), 50, carry=cell != "noop-nocookie")
            pace = await timer.run(cell_path(cell), 200, carry=cell != "noop-nocookie")
            result.iterations.setdefault(name, {})[cell] = iterations_for(pace, seconds)
            _check(name, cell, timer)
        cells = [(name, cell) for name, cell in timers if name != "bare"]
        for index in range(rounds):
            for name, cell in shuffled(cells, seed=index):
                # The bare app's same route just before: the pair shares the machine's
                # state of the moment, so the difference is the middleware alone.
                pair = []
                for which in ("bare", name):
                    settle()
                    timer = timers[which, cell]
                    n = result.iterations[which][cell]
                    us = await timer.run(cell_path(cell), n, carry=cell != "noop-nocookie")
                    _check(which, cell, timer)
                    result.add(which, cell, us, timer.cpu_us)
                    pair.append(us)
                result.add_overhead(name, cell, pair[1] - pair[0])
            for name in floors.ops:
                settle()
                us = await floors.time(name, floor_iterations[name])
                floor_samples.setdefault(name, []).append(us)
            print(f"  in-process ASGI round {index + 1}/{rounds} done", file=sys.stderr)
        redis_apps = [name for name in names if name in REDIS_APPS]
        if redis_apps:
            monitor = Monitor()
            try:
                for name in redis_apps:
                    for cell in cells_of(name):
                        timer = timers[name, cell]
                        with Counting(monitor, run.redis_prefix(name), COUNT_REQUESTS) as c:
                            await timer.run(
                                cell_path(cell), COUNT_REQUESTS, cell != "noop-nocookie"
                            )
                        assert c.result is not None
                        counted.setdefault(name, {})[cell] = asdict(c.result)
            finally:
                monitor.close()
    finally:
        for app in built.values():
            await app.aclose()
        await floors.close()
    measured = {"samples": floor_samples, "iterations": floor_iterations}
    return result, counted, {**measured, "skipped": floors.skipped}


async def _establish(app: BuiltApp) -> Jar:
    """One /write gives the client its session cookie (the bare app has none to give)."""
    jar = Jar()
    timer = AsgiTimer(app.app, jar)
    await timer.run("/write", 1)
    if app.cookie_name is not None and jar.value is None:
        raise RuntimeError(f"{app.name}: /write set no session cookie")
    return jar


def _check(name: str, cell: str, timer: AsgiTimer) -> None:
    if timer.status != 200:
        raise RuntimeError(f"{name} {cell}: status {timer.status}")
