"""The demo served by uvicorn in this process, on a store the test picks, with two test
fixtures built in: slow writers, and a gate that holds a response back.

- ``POST /slow/write?name=N`` loads the session (the middleware does, before the
  handler), reports what it found, waits ``SLOW_SECONDS``, then writes a CSRF token and a
  cart line, as a page's background requests do.
- ``Gate`` holds the response to one POST (``/login``, ``/logout``) after the app and the
  middleware have run, so the store already holds the new key (or none) while the
  browser has not seen the response yet: requests fired in that window carry the old key.

Both report through thread-safe objects, so a test can wait for "the server has loaded
these sessions" or "the login's response is ready" instead of sleeping.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sessionware import get_session
from sessionware.demo import create_app
from sessionware.stores.base import SessionStore

SLOW_SECONDS = 1.0  # between loading the session and writing to it
WAIT_SECONDS = 10.0  # the most a test waits for the server, and the gate holds a response


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a slow writer's session held when the handler began."""

    key: str | None
    data: dict[str, Any]


@dataclass
class SlowWriters:
    """The slow writers' reports, by name."""

    loaded: dict[str, Loaded] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def report(self, name: str, seen: Loaded) -> None:
        with self._changed:
            self.loaded[name] = seen
            self._changed.notify_all()

    def wait_loaded(self, *names: str) -> None:
        """Until the server has loaded the session of every writer named."""
        with self._changed:
            done = self._changed.wait_for(lambda: set(names) <= set(self.loaded), WAIT_SECONDS)
        assert done, f"the server never began {sorted(set(names) - set(self.loaded))}"

    async def write(self, request: Request) -> Response:
        session = get_session(request)
        name = request.query_params["name"]
        self.report(name, Loaded(session.session_key, dict(session)))
        await anyio.sleep(SLOW_SECONDS)
        session["csrf_token"] = secrets.token_urlsafe(16)
        cart = session.get("cart")
        session["cart"] = {**(cart if isinstance(cart, dict) else {}), name: 1}
        return PlainTextResponse("written")


class Gate:
    """ASGI middleware around the demo: holds back the response to one armed POST."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._armed: str | None = None
        self._held = threading.Event()
        self._released = threading.Event()

    def hold(self, path: str) -> None:
        """Hold the response to the next POST to ``path``."""
        self._held.clear()
        self._released.clear()
        self._armed = path

    def wait_held(self) -> None:
        """Until the armed response is ready (the store has done its part) and held."""
        assert self._held.wait(WAIT_SECONDS), "the held request never reached its response"

    def release(self) -> None:
        self._released.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        armed = self._armed
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != armed:
            await self.app(scope, receive, send)
            return
        self._armed = None

        async def held_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self._held.set()
                await anyio.to_thread.run_sync(self._released.wait, WAIT_SECONDS)
            await send(message)

        await self.app(scope, receive, held_send)


@dataclass(frozen=True, slots=True)
class ServedDemo:
    kind: str  # the store kind, as tests/stores/factories.py names it
    url: str
    writers: SlowWriters
    gate: Gate


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_demo(kind: str, store: SessionStore) -> Iterator[ServedDemo]:
    """The demo on ``store`` of ``kind`` (closed at shutdown), on a free port of 127.0.0.1."""
    writers = SlowWriters()
    demo = create_app(store, routes=[Route("/slow/write", writers.write, methods=["POST"])])
    gate = Gate(demo)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(gate, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            assert thread.is_alive(), "the demo server stopped while starting"
            assert time.monotonic() < deadline, "the demo server did not start"
            time.sleep(0.02)
        yield ServedDemo(kind, f"http://127.0.0.1:{port}", writers, gate)
    finally:
        gate.release()  # a test that failed mid-race must not keep the server waiting
        server.should_exit = True
        thread.join(WAIT_SECONDS)
