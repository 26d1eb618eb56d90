"""The ASGI middleware: a thin adapter between scope/send and the lifecycle flows."""

from __future__ import annotations

import logging
import time
from typing import Unpack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from ._flow import run_async
from ._lifecycle import (
    Outcome,
    RequestState,
    close_session,
    fresh_state,
    needs_close,
    open_session,
)
from ._options import Options
from ._session import Session

logger = logging.getLogger("sessionware")

_EDITED = (b"vary", b"set-cookie")  # response headers the session may have to merge with


class SessionMiddleware:
    """Publishes ``scope["session"]`` for http and websocket scopes; lifespan passes through."""

    def __init__(self, app: ASGIApp, **options: Unpack[Options]) -> None:
        self.app = app
        self.settings: Settings = build_settings(**options)
        self._cookie_name = self.settings.cookie.name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        settings = self.settings
        if kind not in ("http", "websocket") or (
            settings.exclude_paths and scope.get("path", "").startswith(settings.exclude_paths)
        ):
            await self.app(scope, receive, send)
            return
        cookie_headers = [v for k, v in scope["headers"] if k == b"cookie"]
        cookie = None
        if cookie_headers:
            cookie = find_cookie([v.decode("latin-1") for v in cookie_headers], self._cookie_name)
        if cookie is None and kind == "http":
            session = Session(policy=settings.policy)
            scope["session"] = session
            await self.app(scope, receive, _lazy_responder(settings, session, send))
            return
        if cookie is None:
            state = fresh_state(settings)
        else:
            try:
                flow = open_session(settings, cookie, time.time())
                state = await run_async(flow, settings.store)
            except SessionStoreError as exc:
                log_failure(logger, "load", exc)
                await _refuse(kind, send)
                return
        scope["session"] = state.session
        if kind == "websocket":
            await self.app(scope, receive, send)
            await _persist_after_websocket(settings, state)
            return
        await self.app(scope, receive, _Responder(settings, state, send).send)


def _lazy_responder(settings: Settings, session: Session, send: Send) -> Send:
    """``send`` for a request without a session cookie: most never touch the session, so
    its state and responder are built only if the response may need a cookie or ``Vary``."""
    forward = send

    async def send_message(message: Message) -> None:
        nonlocal forward
        if message["type"] == "http.response.start" and needs_close(settings, session, False):
            forward = _Responder(settings, RequestState(session, had_cookie=False), send).send
        await forward(message)

    return send_message


class _Responder:
    """Wraps ``send``: at ``http.response.start`` runs the closing flow and edits headers."""

    __slots__ = ("_send", "_settings", "_state", "_swallow")

    def __init__(self, settings: Settings, state: RequestState, send: Send) -> None:
        self._settings = settings
        self._state = state
        self._send = send
        self._swallow = False

    async def send(self, message: Message) -> None:
        if self._swallow:
            return  # the app's own body after we answered 503/500 in its place
        state = self._state
        if message["type"] == "http.response.start" and needs_close(
            self._settings, state.session, state.had_cookie
        ):
            try:
                outcome = await run_async(
                    close_session(self._settings, self._state, message["status"], time.time()),
                    self._settings.store,
                )
            except SessionStoreError as exc:
                log_failure(logger, "save", exc)
                await self._replace(503, UNAVAILABLE_BODY)
                return
            except CookieTooLargeError as exc:
                log_failure(logger, "cookie", exc)
                await self._replace(500, TOO_LARGE_BODY)
                return
            if outcome.vary or outcome.set_cookie is not None:
                message = {**message, "headers": self._headers(message, outcome)}
        await self._send(message)

    def _headers(self, message: Message, outcome: Outcome) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[bytes, bytes]] = list(message.get("headers", []))
        if not any(name.lower() in _EDITED for name, _ in raw):
            # Nothing of ours to merge or replace: append without re-encoding every header.
            if outcome.vary:
                raw.append((b"vary", b"Cookie"))
            if outcome.set_cookie is not None:
                raw.append((b"set-cookie", outcome.set_cookie.encode("latin-1")))
            return raw
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in raw]
        edited = edit_headers(headers, outcome.vary, outcome.set_cookie, self._settings.cookie.name)
        return _encode(edited)

    async def _replace(self, status: int, body: bytes) -> None:
        self._swallow = True
        await _send_plain(self._send, status, body)


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


async def _send_plain(send: Send, status: int, body: bytes) -> None:
    headers = _encode(plain_response(status, body))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _refuse(kind: str, send: Send) -> None:
    """Answer 503 (http) or close with 1011 (websocket) when the session cannot load."""
    if kind == "websocket":
        await send({"type": "websocket.close", "code": 1011, "reason": "session store unavailable"})
        return
    await _send_plain(send, 503, UNAVAILABLE_BODY)


async def _persist_after_websocket(settings: Settings, state: RequestState) -> None:
    """A socket cannot set cookies once open: persist changes to an existing stored session."""
    if settings.store is None or state.session._loaded_key is None:
        return
    try:
        await run_async(close_session(settings, state, 200, time.time()), settings.store)
    except SessionStoreError as exc:
        log_failure(logger, "save after websocket", exc)
