"""The WSGI middleware: the same lifecycle as ASGI, driven by the stores' sync methods.

The session is loaded lazily, at its first use, so a request that never touches it makes
no store call even when it carries a cookie.
"""

from __future__ import annotations

import http
import time
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Unpack

from ._cookies import edit_headers
from ._flow import run_sync
from ._lifecycle import (
    Lifecycle,
    Options,
    Replacement,
    RequestState,
    Session,
    SessionStoreError,
    build_settings,
)
from ._types import Environ, ExcInfo, Headers, StartResponse, Write, WSGIApp

ENVIRON_KEY = "sessionware.session"
ERROR_KEY = "sessionware.error"  # environ key of the SessionStoreError given to error_app


class WSGISessionMiddleware:
    """Publishes ``environ["sessionware.session"]``; no event loop, no per-request shared state."""

    def __init__(self, app: WSGIApp, **options: Unpack[Options]) -> None:
        self.app = app
        self.lifecycle = Lifecycle(build_settings(options))
        self.settings = self.lifecycle.settings
        store = self.settings.store
        if not store.supports_sync:
            raise ValueError(
                f"{type(store).__name__} offers only async methods; WSGI needs a sync store"
            )

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_COOKIE")
        state = self.lifecycle.begin(
            "http", environ.get("PATH_INFO", ""), [header] if header else []
        )
        if state is None:
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = state.session
        if state.needs_load:
            state.session.defer(partial(self._load, state))
        responder = _Responder(self, environ, state, start_response)
        try:
            result = self.app(environ, responder.start_response)
        except SessionStoreError as exc:
            # The lazy load failed and the app let the error through: answer in its place.
            if exc is not state.load_error or responder.started:
                raise
            responder.replace(self.lifecycle.unavailable(exc))
            return responder.replacement or []
        return responder.body(result)

    def _load(self, state: RequestState, session: Session) -> None:
        """The session's first use: load it now; a store failure propagates into the app
        (so it stops) and is answered with the outage response at the response."""
        run_sync(self.lifecycle.open(state, time.time()), self.settings.store)
        if state.load_error is not None:
            raise state.load_error


class _Responder:
    """Wraps ``start_response``: runs the closing flow and edits the headers once."""

    __slots__ = ("_environ", "_middleware", "_start_response", "_state", "replacement", "started")

    def __init__(
        self,
        middleware: WSGISessionMiddleware,
        environ: Environ,
        state: RequestState,
        start_response: StartResponse,
    ) -> None:
        self._middleware = middleware
        self._environ = environ
        self._state = state
        self._start_response = start_response
        self.replacement: Iterable[bytes] | None = None
        self.started = False

    def start_response(
        self, status: str, headers: Headers, exc_info: ExcInfo | None = None
    ) -> Write:
        lifecycle = self._middleware.lifecycle
        if exc_info is None and lifecycle.needs_close(self._state):
            outcome = run_sync(
                lifecycle.close(self._state, int(status[:3]), time.time()),
                lifecycle.settings.store,
            )
            if outcome.replacement is not None:
                self.replace(outcome.replacement)
                return _discard
            if outcome.vary or outcome.set_cookie is not None:
                name = lifecycle.settings.cookie.name
                headers = edit_headers(headers, outcome.vary, outcome.set_cookie, name)
        self.started = True
        return self._start_response(status, headers, exc_info)

    def replace(self, replacement: Replacement) -> None:
        """Answer with the lifecycle's replacement (or ``error_app``'s) in the app's place."""
        self.started = True
        error_app = self._middleware.settings.error_app
        if error_app is not None:
            self._environ[ERROR_KEY] = replacement.error
            self.replacement = error_app(self._environ, self._start_response)
            return
        phrase = http.HTTPStatus(replacement.status).phrase
        self._start_response(f"{replacement.status} {phrase}", replacement.headers)
        self.replacement = [replacement.body]

    def body(self, result: Iterable[bytes]) -> Iterable[bytes]:
        if self.replacement is not None:
            _close(result)
            return self.replacement
        if self.started:
            return result
        return self._late(result)

    def _late(self, result: Iterable[bytes]) -> Iterator[bytes]:
        """The app calls ``start_response`` while its body is iterated (PEP 3333 allows it):
        its chunks go out only if the response was not replaced meanwhile."""
        try:
            for chunk in result:
                if self.replacement is not None:
                    break
                yield chunk
        finally:
            _close(result)
        if self.replacement is not None:
            yield from self.replacement


def _discard(_data: bytes) -> None:
    """The app's ``write()`` after its response was replaced: dropped with its body."""


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
