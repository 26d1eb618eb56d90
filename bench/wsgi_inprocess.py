"""The in-process WSGI table: each Flask flavour x cell, interleaved rounds."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

from .config import Run
from .inprocess import CELLS, Jar, Rounds, WsgiTimer, cell_path, iterations_for, settle, shuffled
from .redis_count import Counting, Monitor
from .wsgi_apps import WSGI_REDIS_APPS, BuiltWsgi, build_wsgi

COUNT_REQUESTS = 100
BARE = "flask-bare"
Counted = dict[str, dict[str, dict[str, Any]]]


def run_wsgi_inprocess(
    names: list[str], run: Run, rounds: int, seconds: float
) -> tuple[Rounds, Counted]:
    built = {name: build_wsgi(name, run) for name in names}
    timers: dict[tuple[str, str], WsgiTimer] = {}
    result = Rounds()
    counted: Counted = {}
    try:
        for name, app in built.items():
            jar = _establish(app)
            for cell in CELLS:
                timers[name, cell] = WsgiTimer(app.app, jar)
        for (name, cell), timer in timers.items():
            timer.run(cell_path(cell), 50, carry=cell != "noop-nocookie")
            pace = timer.run(cell_path(cell), 200, carry=cell != "noop-nocookie")
            result.iterations.setdefault(name, {})[cell] = iterations_for(pace, seconds)
            _check(name, cell, timer)
        cells = [(name, cell) for name, cell in timers if name != BARE]
        for index in range(rounds):
            for name, cell in shuffled(cells, seed=200 + index):
                pair = []
                for which in (BARE, name):  # the bare app's same route just before
                    settle()
                    timer = timers[which, cell]
                    n = result.iterations[which][cell]
                    us = timer.run(cell_path(cell), n, cell != "noop-nocookie")
                    _check(which, cell, timer)
                    result.add(which, cell, us, timer.cpu_us)
                    pair.append(us)
                result.add_overhead(name, cell, pair[1] - pair[0])
            print(f"  in-process WSGI round {index + 1}/{rounds} done", file=sys.stderr)
        redis_apps = [name for name in names if name in WSGI_REDIS_APPS]
        if redis_apps:
            monitor = Monitor()
            try:
                for name in redis_apps:
                    for cell in CELLS:
                        timer = timers[name, cell]
                        with Counting(monitor, run.redis_prefix(name), COUNT_REQUESTS) as c:
                            timer.run(cell_path(cell), COUNT_REQUESTS, cell != "noop-nocookie")
                        assert c.result is not None
                        counted.setdefault(name, {})[cell] = asdict(c.result)
            finally:
                monitor.close()
    finally:
        for app in built.values():
            app.close()
    return result, counted


def _establish(app: BuiltWsgi) -> Jar:
    jar = Jar()
    WsgiTimer(app.app, jar).run("/write", 1)
    if app.cookie_name is not None and jar.value is None:
        raise RuntimeError(f"{app.name}: /write set no session cookie")
    return jar


def _check(name: str, cell: str, timer: WsgiTimer) -> None:
    if timer.status != 200:
        raise RuntimeError(f"{name} {cell}: status {timer.status}")
