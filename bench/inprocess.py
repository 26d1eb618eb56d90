"""In-process timing: the app called directly, no server and no HTTP client in the way.

Each request is a hand-built ASGI scope (or WSGI environ) with no-op receive/send, and
the client carries its cookie from one response to the next, as a browser does. Cells
(app x route) are measured in rounds, shuffled in each round, each right after the bare
app's same route: the overhead of a round is the difference within that pair, so a slow
spell of the (shared, virtual) machine lands on both. Reported: the median over rounds
of µs per request, and the median of the paired overheads.
"""

from __future__ import annotations

import gc
import io
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message

# The cells: "noop-nocookie" is /noop from a client that never had a session cookie.
CELLS = ("noop-nocookie", "noop", "read", "write")

_REQUEST: Message = {"type": "http.request", "body": b"", "more_body": False}
_BASE_HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"swbench"), (b"accept", b"*/*")]


@dataclass
class Jar:
    """One client's session cookie, as the ``Cookie`` header value it sends (or None)."""

    value: bytes | None = None

    def take(self, set_cookie: bytes) -> None:
        pair = set_cookie.split(b";", 1)[0].strip()
        lower = set_cookie.lower()
        gone = b"max-age=0" in lower or b"01 jan 1970" in lower
        self.value = None if gone or pair.endswith((b"=", b"=''", b'=""')) else pair


def cell_path(cell: str) -> str:
    return "/noop" if cell == "noop-nocookie" else f"/{cell}"


class AsgiTimer:
    """Times ``n`` requests of one route against one ASGI app."""

    def __init__(self, app: ASGIApp, jar: Jar) -> None:
        self.app = app
        self.jar = jar
        self.status = 0
        self.cpu_us = 0.0  # this thread's CPU time per request in the last run

    async def run(self, path: str, n: int, carry: bool = True) -> float:
        """µs per request; ``carry=False`` sends no cookie and keeps none."""
        app, jar = self.app, self.jar
        raw_path = path.encode()
        box: list[Message] = []

        async def receive() -> Message:
            return _REQUEST

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                box.append(message)

        cpu = time.thread_time_ns()
        start = time.perf_counter_ns()
        for _ in range(n):
            cookie = jar.value if carry else None
            headers = _BASE_HEADERS if cookie is None else [*_BASE_HEADERS, (b"cookie", cookie)]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.4"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": raw_path,
                "root_path": "",
                "query_string": b"",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
                "state": {},
            }
            await app(scope, receive, send)
            if carry:
                for name, value in box[-1]["headers"]:
                    if name == b"set-cookie":
                        jar.take(value)
        elapsed = time.perf_counter_ns() - start
        self.cpu_us = (time.thread_time_ns() - cpu) / n / 1000
        self.status = box[-1]["status"]
        return elapsed / n / 1000


StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WsgiTimer:
    """Times ``n`` requests of one route against one WSGI app."""

    def __init__(self, app: WSGIApp, jar: Jar) -> None:
        self.app = app
        self.jar = jar
        self.status = 0
        self.cpu_us = 0.0  # this thread's CPU time per request in the last run

    def run(self, path: str, n: int, carry: bool = True) -> float:
        app, jar = self.app, self.jar
        box: list[tuple[str, list[tuple[str, str]]]] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            box.append((status, headers))
            return _discard

        cpu = time.thread_time_ns()
        start = time.perf_counter_ns()
        for _ in range(n):
            cookie = jar.value if carry else None
            environ: dict[str, Any] = {
                "REQUEST_METHOD": "GET",
                "SCRIPT_NAME": "",
                "PATH_INFO": path,
                "QUERY_STRING": "",
                "SERVER_NAME": "127.0.0.1",
                "SERVER_PORT": "8000",
                "SERVER_PROTOCOL": "HTTP/1.1",
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_HOST": "127.0.0.1:8000",
                "HTTP_USER_AGENT": "swbench",
                "HTTP_ACCEPT": "*/*",
                "wsgi.version": (1, 0),
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(),
                "wsgi.errors": io.StringIO(),
                "wsgi.multithread": True,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
            if cookie is not None:
                environ["HTTP_COOKIE"] = cookie.decode("latin-1")
            body = app(environ, start_response)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            if carry:
                for name, value in box[-1][1]:
                    if name.lower() == "set-cookie":
                        jar.take(value.encode("latin-1"))
        elapsed = time.perf_counter_ns() - start
        self.cpu_us = (time.thread_time_ns() - cpu) / n / 1000
        self.status = int(box[-1][0][:3])
        return elapsed / n / 1000


def _discard(_data: bytes) -> object:
    return None


@dataclass
class Rounds:
    """Per-cell timings over rounds: ``samples[app][cell]`` is µs per request (wall clock),
    one per round; ``cpu_samples`` the same in this thread's CPU time, which a busy
    machine inflates less (it excludes waiting for the CPU, and for a server's reply)."""

    samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    cpu_samples: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    # app - bare, each measured right after the bare app's same route: one per round
    overheads: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    iterations: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_overhead(self, app: str, cell: str, value: float) -> None:
        self.overheads.setdefault(app, {}).setdefault(cell, []).append(value)

    def add(self, app: str, cell: str, value: float, cpu: float) -> None:
        self.samples.setdefault(app, {}).setdefault(cell, []).append(value)
        self.cpu_samples.setdefault(app, {}).setdefault(cell, []).append(cpu)


def iterations_for(
    us_per_request: float, seconds: float, low: int = 100, high: int = 50_000
) -> int:
    """How many requests fill about ``seconds`` at the measured pace."""
    return max(low, min(high, int(seconds * 1e6 / max(us_per_request, 0.1))))


def shuffled(items: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    order = list(items)
    random.Random(seed).shuffle(order)
    return order


def settle() -> None:
    """Between cells: collect garbage now so no cell pays for another's."""
    gc.collect()
