"""Finding the sessionware middleware (or Flask integration) inside an application.

A test passes the app its client talks to; the session lives in whatever layer of it
holds a ``Lifecycle``: a ``SessionMiddleware``, a ``WSGISessionMiddleware`` or the Flask
``SessionInterface``. Layers are found through the attributes frameworks use to nest
apps (``.app``, Starlette's ``middleware_stack``, Flask's ``wsgi_app`` and
``session_interface``); Starlette and FastAPI build their middleware at the first
request, so before that the ``SessionMiddleware`` is made from the app's own
``user_middleware`` entry, with the same arguments and thus the same store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .._flow import Flow
from .._lifecycle import NOTHING, Lifecycle, Outcome, RequestState
from ..asgi import SessionMiddleware
from ..wsgi import WSGISessionMiddleware

_NESTED = ("middleware_stack", "app", "wsgi_app", "_app", "application")
_MAX_DEPTH = 32


@dataclass(frozen=True, slots=True)
class Target:
    """What the helpers need of the layer that owns the session: its lifecycle, and the
    two steps the layer itself takes around it (Flask's adds its own session class and
    the refresh of permanent sessions)."""

    lifecycle: Lifecycle
    begin: Callable[[str, list[str]], RequestState | None]
    closing: Callable[[RequestState, int], Flow[Outcome]]


def find_target(app: Any) -> Target:
    """The session layer in ``app``; ``LookupError`` naming what to pass when none is."""
    found = _search(app, set(), 0)
    if found is None:
        raise LookupError(
            f"no sessionware SessionMiddleware, WSGISessionMiddleware or Flask integration "
            f"(sessionware.flask.init_app) found in {app!r}: pass the app the client talks "
            "to, or the middleware itself"
        )
    return found


def _search(obj: Any, seen: set[int], depth: int) -> Target | None:
    if obj is None or id(obj) in seen or depth > _MAX_DEPTH:
        return None
    seen.add(id(obj))
    if isinstance(obj, SessionMiddleware | WSGISessionMiddleware):
        return _middleware_target(obj.lifecycle)
    flask_target = _flask_target(obj)
    if flask_target is not None:
        return flask_target
    for name in _NESTED:
        try:
            inner = getattr(obj, name, None)
        except Exception:  # a property that cannot answer outside a request
            continue
        found = _search(getattr(inner, "__self__", inner), seen, depth + 1)
        if found is not None:
            return found
    return _from_spec(getattr(obj, "user_middleware", None))


def _from_spec(entries: object) -> Target | None:
    """Starlette/FastAPI before their first request: ``Middleware(cls, *args, **kwargs)``."""
    if not isinstance(entries, list):
        return None
    for entry in entries:
        cls = getattr(entry, "cls", None)
        if isinstance(cls, type) and issubclass(cls, SessionMiddleware):
            built = cls(_never_called, *entry.args, **entry.kwargs)
            return _middleware_target(built.lifecycle)
    return None


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("the helpers' copy of the middleware never serves requests")


def _flask_target(obj: Any) -> Target | None:
    interface = getattr(obj, "session_interface", None)
    if interface is None:
        return None
    try:
        from ..flask import FlaskSessionInterface
    except ImportError:  # Flask is not installed, so this is not a Flask app
        return None
    if not isinstance(interface, FlaskSessionInterface):
        return None
    return Target(interface.lifecycle, interface.begin, interface.closing)


def _middleware_target(lifecycle: Lifecycle) -> Target:
    def begin(path: str, cookie_headers: list[str]) -> RequestState | None:
        return lifecycle.begin("http", path, cookie_headers)

    def closing(state: RequestState, status: int) -> Flow[Outcome]:
        if not lifecycle.needs_close(state):
            return _nothing()
        return lifecycle.close(state, status, time.time())

    return Target(lifecycle, begin, closing)


def _nothing() -> Flow[Outcome]:
    return NOTHING
    yield  # a flow that asks the store for nothing
