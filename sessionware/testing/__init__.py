"""Helpers for testing apps that use sessionware, and the store conformance kit.

``edit_session(client, app)`` is Flask's ``session_transaction`` (Django's
``client.session``) for every client: it yields the session of the client's cookie jar,
saves it when the block ends and puts the session cookie in the jar, so the client's next
request carries it::

    with edit_session(client, app) as session:
        session["user_id"] = 42

``aedit_session`` does the same with the store's async methods (``async with``), and
``read_session`` / ``aread_session`` return the data without saving anything.

``app`` is the app the client talks to (the helpers find the ``SessionMiddleware``,
``WSGISessionMiddleware`` or ``sessionware.flask`` integration inside it) or the
middleware itself. The helpers use that middleware's own lifecycle, so its rules apply
as to a request: a cookie whose key was ended lately (stale) gives an empty session whose
changes are dropped, an unknown key is never adopted, and a block that raises saves
nothing. A store failure raises ``SessionStoreError``, a session too large for its store
or cookie ``SessionTooLargeError``, and a value the serializer cannot encode
``SessionSerializationError``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from .._flow import run_async, run_sync
from .._lifecycle import Outcome, RequestState
from .._session import Session
from ._clients import Jar, jar_for
from ._targets import Target, find_target

__all__ = ["aedit_session", "aread_session", "edit_session", "read_session"]

_STATUS = 200  # the save happens as at the end of a successful request


@contextmanager
def edit_session(client: Any, app: Any, *, url: str | None = None) -> Iterator[Session]:
    """The client's session, saved at the end of the block (store's sync methods).

    ``url`` is where the client sends requests, needed only when it has no ``base_url``.
    Under the Flask integration the session is a ``sessionware.flask.FlaskSession``.
    """
    target, jar, state = _begin(client, app, url)
    _check_sync(target)
    store = target.lifecycle.settings.store
    if state.needs_load:
        run_sync(target.lifecycle.open(state, time.time()), store)
        _raise_load_error(state)
    yield state.session
    _apply(run_sync(target.closing(state, _STATUS), store), jar)


@asynccontextmanager
async def aedit_session(client: Any, app: Any, *, url: str | None = None) -> AsyncIterator[Session]:
    """``edit_session`` with the store's async methods, for async tests."""
    target, jar, state = _begin(client, app, url)
    store = target.lifecycle.settings.store
    if state.needs_load:
        await run_async(target.lifecycle.open(state, time.time()), store)
        _raise_load_error(state)
    yield state.session
    _apply(await run_async(target.closing(state, _STATUS), store), jar)


def read_session(client: Any, app: Any, *, url: str | None = None) -> dict[str, Any]:
    """The data of the client's session (empty if it has none); nothing is saved."""
    target, _, state = _begin(client, app, url)
    _check_sync(target)
    if state.needs_load:
        run_sync(target.lifecycle.open(state, time.time()), target.lifecycle.settings.store)
        _raise_load_error(state)
    return state.session.raw_data()


async def aread_session(client: Any, app: Any, *, url: str | None = None) -> dict[str, Any]:
    """``read_session`` with the store's async methods."""
    target, _, state = _begin(client, app, url)
    if state.needs_load:
        await run_async(target.lifecycle.open(state, time.time()), target.lifecycle.settings.store)
        _raise_load_error(state)
    return state.session.raw_data()


def _begin(client: Any, app: Any, url: str | None) -> tuple[Target, Jar, RequestState]:
    target = find_target(app)
    path = target.lifecycle.settings.cookie.path
    jar = jar_for(client, path, url)
    state = target.begin(path, jar.cookie_headers())
    if state is None:
        raise ValueError(
            f"the session cookie's path {path!r} is in exclude_paths, so no request there "
            "has a session"
        )
    return target, jar, state


def _check_sync(target: Target) -> None:
    store = target.lifecycle.settings.store
    if not store.supports_sync:
        raise TypeError(
            f"{type(store).__name__} offers only async methods: use aedit_session / "
            "aread_session in an async test"
        )


def _raise_load_error(state: RequestState) -> None:
    if state.load_error is not None:
        raise state.load_error


def _apply(outcome: Outcome, jar: Jar) -> None:
    if outcome.replacement is not None:
        raise outcome.replacement.error
    if outcome.set_cookie is not None:
        jar.receive(outcome.set_cookie)
