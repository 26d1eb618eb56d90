"""The WSGI middleware: the same lifecycle as ASGI, driven by the stores' sync methods."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Unpack

from ._config import Settings, build_settings
from ._cookies import edit_headers, find_cookie
from ._errors import (
    TOO_LARGE_BODY,
    UNAVAILABLE_BODY,
    CookieTooLargeError,
    SessionStoreError,
    log_failure,
    plain_response,
)
from ._flow import run_sync
from ._lifecycle import (
    RequestState,
    close_session,
    fresh_state,
    needs_close,
    open_session,
)
from ._options import Options

logger = logging.getLogger("sessionware")

ENVIRON_KEY = "sessionware.session"
_STATUS = {500: "500 Internal Server Error", 503: "503 Service Unavailable"}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class WSGISessionMiddleware:
    """Publishes ``environ["sessionware.session"]``; no event loop, no per-request shared state."""

    def __init__(self, app: WSGIApp, **options: Unpack[Options]) -> None:
        self.app = app
        self.settings: Settings = build_settings(**options)
        store = self.settings.store
        if store is not None and not store.supports_sync:
            raise ValueError(
                f"{type(store).__name__} offers only async methods; WSGI needs a sync store"
            )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        settings = self.settings
        if settings.exclude_paths and environ.get("PATH_INFO", "").startswith(
            settings.exclude_paths
        ):
            return self.app(environ, start_response)
        header = environ.get("HTTP_COOKIE")
        cookie = find_cookie([header], settings.cookie.name) if header else None
        if cookie is None:
            state = fresh_state(settings)
        else:
            try:
                state = run_sync(open_session(settings, cookie, time.time()), settings.store)
            except SessionStoreError as exc:
                log_failure(logger, "load", exc)
                start_response(_STATUS[503], plain_response(503, UNAVAILABLE_BODY))
                return [UNAVAILABLE_BODY]
        environ[ENVIRON_KEY] = state.session
        responder = _Responder(settings, state, start_response)
        result = self.app(environ, responder.start_response)
        if responder.replacement is None:
            return result
        return responder.replaced(result)


class _Responder:
    """Wraps ``start_response``: runs the closing flow and edits the headers once."""

    __slots__ = ("_settings", "_start_response", "_state", "replacement")

    def __init__(self, settings: Settings, state: RequestState, start_response: StartResponse):
        self._settings = settings
        self._state = state
        self._start_response = start_response
        self.replacement: bytes | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        state = self._state
        if exc_info is None and needs_close(self._settings, state.session, state.had_cookie):
            try:
                outcome = run_sync(
                    close_session(self._settings, self._state, int(status[:3]), time.time()),
                    self._settings.store,
                )
            except SessionStoreError as exc:
                log_failure(logger, "save", exc)
                return self._replace(503, UNAVAILABLE_BODY)
            except CookieTooLargeError as exc:
                log_failure(logger, "cookie", exc)
                return self._replace(500, TOO_LARGE_BODY)
            if outcome.vary or outcome.set_cookie is not None:
                headers = edit_headers(
                    headers, outcome.vary, outcome.set_cookie, self._settings.cookie.name
                )
        return self._start_response(status, headers, exc_info)

    def _replace(self, code: int, body: bytes) -> Callable[[bytes], object]:
        self.replacement = body
        self._start_response(_STATUS[code], plain_response(code, body))
        return lambda _data: None  # the app's writes are discarded with its body

    def replaced(self, result: Iterable[bytes]) -> Iterator[bytes]:
        """Yield our body instead of the app's, closing the app's iterable as PEP 3333 asks."""
        try:
            yield self.replacement or b""
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
