"""``flask.session`` as a sessionware session: ``init_app(app, store=..., **options)``.

The integration is a Flask ``SessionInterface`` that drives the same lifecycle as the
middlewares (delta saves, stale keys, rotation, renewal, lazy loading at first use); it
only translates Flask's request and response, so every response rule lives in one place.

How failures reach the client:

- The store fails while the session loads (at its first use, inside the view, a
  ``before_request`` hook or an extension): ``SessionUnavailable`` is raised, a 503
  ``HTTPException`` that is also a ``SessionStoreError``. Flask's error handling sees it,
  so ``@app.errorhandler(503)`` (or ``errorhandler(SessionStoreError)``) renders it;
  without a handler it is the middlewares' plain 503 (or ``error_app``'s response). A
  response that swallowed the error is replaced by the same 503 when it is saved.
- The store fails while the session is saved (the view has run): the response becomes
  that same 503, rendered the same way, or with ``on_save_error="keep"`` stays the view's
  own response without a cookie.
- A value the serializer cannot encode, or a session too large for its store or cookie,
  is a programming error: it is raised from ``save_session``, so Flask answers it as any
  unhandled error (a 500 that ``errorhandler(500)`` renders, or the exception itself in
  testing and debug mode); nothing is stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from functools import partial
from typing import Any, Unpack

from flask import Flask, Request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.wrappers import Response

from . import _flask_login
from ._cookies import merge_vary
from ._errors import SessionStoreError
from ._flask_config import options_from_config, refreshes_permanent
from ._flask_session import ExcludedSession, FlaskSession
from ._flow import Flow, run_sync
from ._lifecycle import NOTHING, Lifecycle, Outcome, Replacement, RequestState, Session
from ._options import Options, build_settings
from ._types import Environ, StartResponse

__all__ = ["FlaskSession", "FlaskSessionInterface", "SessionUnavailable", "init_app"]

ENVIRON_KEY = "sessionware.session"  # where ``get_session(request)`` finds it, as under WSGI
ERROR_KEY = "sessionware.error"  # environ key of the SessionStoreError given to error_app
EXTENSION_KEY = "sessionware"  # ``app.extensions[...]``: the installed interface


class SessionUnavailable(ServiceUnavailable, SessionStoreError):
    """The session store failed: a 503 for Flask's error handling, carrying the
    ``SessionStoreError`` (``.error``) and the middlewares' outage response."""

    def __init__(self, replacement: Replacement, error_app: Any = None) -> None:
        super().__init__(description=replacement.body.decode("utf-8").strip())
        self.replacement = replacement
        self.error = replacement.error
        self.error_app = error_app

    def get_headers(
        self, environ: Environ | None = None, scope: dict[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        return list(self.replacement.headers)

    def get_body(self, environ: Environ | None = None, scope: dict[str, Any] | None = None) -> str:
        return self.replacement.body.decode("utf-8")

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.error_app is not None:
            return self.error_app({**environ, ERROR_KEY: self.error}, start_response)  # type: ignore[no-any-return]
        return super().__call__(environ, start_response)


class FlaskSessionInterface(SessionInterface):
    """Opens and saves ``flask.session`` through a sessionware ``Lifecycle``."""

    null_session_class = ExcludedSession
    pickle_based = False

    def __init__(self, lifecycle: Lifecycle, refresh_permanent: bool) -> None:
        self.lifecycle = lifecycle
        self.settings = lifecycle.settings
        self.refresh_permanent = refresh_permanent
        if not self.settings.store.supports_sync:
            store = type(self.settings.store).__name__
            raise ValueError(f"{store} offers only async methods; Flask needs a sync store")

    # -- the translation, shared with sessionware.testing ----------------------------------

    def begin(self, path: str, cookie_headers: list[str]) -> RequestState | None:
        """The lifecycle's ``begin``, with a ``FlaskSession`` that loads at first use."""
        state = self.lifecycle.begin("http", path, cookie_headers)
        if state is None:
            return None
        session = state.session
        assert isinstance(session, FlaskSession)
        session.request_state = state
        if state.needs_load:
            session.defer(partial(self._load, state))
        return state

    def closing(self, state: RequestState, status: int) -> Flow[Outcome]:
        """The lifecycle's ``close`` after Flask's refresh of permanent sessions."""
        session = state.session
        if self.refresh_permanent and status < 500 and state.load_error is None:
            if not session.loaded and not self.settings.store.server_side:
                session.session_key  # noqa: B018 - the session is in the cookie: no store call
            # Flask's SESSION_REFRESH_EACH_REQUEST: a permanent session in use is saved
            # again, so its lifetime counts from its last use. One the request never
            # loaded is left alone: checking would cost a store read per request.
            if (
                session.loaded
                and session.session_key is not None
                and not session.modified
                and isinstance(session, FlaskSession)
                and session.permanent
            ):
                session.modified = True
        if not self.lifecycle.needs_close(state):
            return _nothing()
        return self.lifecycle.close(state, status, time.time())

    def _load(self, state: RequestState, session: Session) -> None:
        run_sync(self.lifecycle.open(state, time.time()), self.settings.store)
        if state.load_error is not None:
            replacement = self.lifecycle.unavailable(state.load_error)
            raise SessionUnavailable(replacement, self.settings.error_app) from state.load_error

    # -- Flask's SessionInterface ----------------------------------------------------------

    def make_null_session(self, app: Flask) -> ExcludedSession:
        return ExcludedSession()

    def open_session(self, app: Flask, request: Request) -> FlaskSession | None:
        environ = request.environ
        header = environ.get("HTTP_COOKIE")
        state = self.begin(environ.get("PATH_INFO", ""), [header] if header else [])
        if state is None:
            return None  # an excluded path: Flask falls back to ``make_null_session``
        environ[ENVIRON_KEY] = state.session
        return state.session  # type: ignore[return-value]

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        state = session.request_state if isinstance(session, FlaskSession) else None
        if state is None:
            return
        outcome = run_sync(self.closing(state, response.status_code), self.settings.store)
        replacement = outcome.replacement
        if replacement is not None:
            if replacement.status != 503:
                raise replacement.error  # too large: a programming error, Flask's 500
            if response.status_code != 503:  # not already the outage, rendered by Flask
                _become(response, self._render(app, replacement))
            return
        if outcome.vary:
            vary = response.headers.getlist("Vary")
            response.headers["Vary"] = merge_vary(", ".join(vary) if vary else None)
        if outcome.set_cookie is not None:
            own = self.settings.cookie.name + "="
            others = [
                value
                for value in response.headers.getlist("Set-Cookie")
                if not value.lstrip().startswith(own)
            ]
            response.headers.setlist("Set-Cookie", [*others, outcome.set_cookie])

    def _render(self, app: Flask, replacement: Replacement) -> Response:
        """The outage response as Flask renders a 503: ``errorhandler(503)`` if any."""
        unavailable = SessionUnavailable(replacement, self.settings.error_app)
        return app.make_response(app.handle_http_exception(unavailable))


def init_app(app: Flask, **options: Unpack[Options]) -> FlaskSessionInterface:
    """Make ``flask.session`` a sessionware session for ``app``.

    Takes the middlewares' options; Flask's config (``SESSION_COOKIE_*``, ``SECRET_KEY``
    and ``SECRET_KEY_FALLBACKS``, ``PERMANENT_SESSION_LIFETIME``,
    ``SESSION_REFRESH_EACH_REQUEST``) fills in what they leave out, read now: configure
    the app before calling this. Mistakes raise here, never at a request.
    """
    config = app.config
    settings = build_settings(options_from_config(config, options))
    lifecycle = Lifecycle(settings, FlaskSession)
    interface = FlaskSessionInterface(lifecycle, refreshes_permanent(config, options))
    app.session_interface = interface
    app.extensions[EXTENSION_KEY] = interface
    _flask_login.connect(app)
    return interface


def _nothing() -> Flow[Outcome]:
    return NOTHING
    yield  # a flow that asks the store for nothing


def _become(response: Response, other: Response) -> None:
    """Turn ``response`` into ``other`` in place: ``save_session`` cannot return a new one."""
    close = getattr(response.response, "close", None)
    if close is not None:
        close()
    response.status = other.status
    response.headers = Headers(other.headers)
    response.response = other.response
    response.direct_passthrough = other.direct_passthrough
