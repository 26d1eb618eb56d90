"""The ASGI middleware: a thin adapter between scope/send and the lifecycle flows."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Unpack

from ._cookies import edit_headers
from ._flow import run_async
from ._lifecycle import (
    CloseSocket,
    Lifecycle,
    Options,
    Outcome,
    Replacement,
    RequestState,
    Session,
    SessionStoreError,
    build_settings,
)
from ._types import ASGIApp, Message, Receive, Scope, Send

LOADER_KEY = "sessionware.load"  # scope key of the explicit loader (autoload=False)
ERROR_KEY = "sessionware.error"  # scope key of the SessionStoreError given to error_app
_EDITED = (b"vary", b"set-cookie")  # response headers the session may have to merge with
_NOT_LOADED = (
    "the session is not loaded: this SessionMiddleware has autoload=False, so call "
    "`await load_session(request)` (or use it as a FastAPI dependency) before using it"
)


class SessionMiddleware:
    """Publishes ``scope["session"]`` for http and websocket scopes; lifespan passes through."""

    def __init__(self, app: ASGIApp, **options: Unpack[Options]) -> None:
        self.app = app
        self.lifecycle = Lifecycle(build_settings(options))
        self.settings = self.lifecycle.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookies = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
        state = self.lifecycle.begin(kind, scope.get("path", ""), cookies)
        if state is None:
            await self.app(scope, receive, send)
            return
        scope["session"] = state.session
        if state.needs_load:
            if self.settings.autoload:
                refusal = await run_async(
                    self.lifecycle.open(state, time.time()), self.settings.store
                )
                if refusal is not None:
                    await self._refuse(scope, receive, send, refusal)
                    return
            else:
                state.session.defer(_explicit_mode)
                scope[LOADER_KEY] = _ExplicitLoader(self.lifecycle, state)
        if kind == "websocket":
            await self.app(scope, receive, send)
            # A socket cannot set cookies: changes to a stored session are saved, and
            # what would need a new cookie was refused in the app (see WEBSOCKET_NO_COOKIE).
            await run_async(self.lifecycle.close(state, 200, time.time()), self.settings.store)
            return
        responder = _Responder(self, scope, receive, state, send)
        try:
            await self.app(scope, receive, responder.send)
        except SessionStoreError as exc:
            # ``load_session`` failed and the app let the error through: answer for it.
            if exc is not state.load_error or responder.started:
                raise
            await self.replace(scope, receive, send, self.lifecycle.unavailable(exc))

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, refusal: Replacement | CloseSocket
    ) -> None:
        if isinstance(refusal, CloseSocket):
            await send({"type": "websocket.close", "code": refusal.code, "reason": refusal.reason})
            return
        await self.replace(scope, receive, send, refusal)

    async def replace(
        self, scope: Scope, receive: Receive, send: Send, replacement: Replacement
    ) -> None:
        """Send the lifecycle's replacement response, or let ``error_app`` render it."""
        if self.settings.error_app is not None:
            await self.settings.error_app({**scope, ERROR_KEY: replacement.error}, receive, send)
            return
        headers = [
            (n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in replacement.headers
        ]
        await send(
            {"type": "http.response.start", "status": replacement.status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": replacement.body})


async def _swallowed() -> None:
    return None


def _explicit_mode(session: Session) -> None:
    raise RuntimeError(_NOT_LOADED)


class _ExplicitLoader:
    """``await load_session(request)`` under ``autoload=False``: loads once, then returns
    the same ``Session``; a store failure raises ``SessionStoreError`` (answered with the
    lifecycle's outage response at the response)."""

    __slots__ = ("_lifecycle", "_state")

    def __init__(self, lifecycle: Lifecycle, state: RequestState) -> None:
        self._lifecycle = lifecycle
        self._state = state

    async def __call__(self) -> Session:
        state = self._state
        if state.needs_load and state.load_error is None:
            lifecycle = self._lifecycle
            await run_async(lifecycle.open(state, time.time()), lifecycle.settings.store)
        if state.load_error is not None:
            raise state.load_error
        return state.session


class _Responder:
    """Wraps ``send``: at ``http.response.start`` runs the closing flow and edits headers."""

    __slots__ = ("_middleware", "_receive", "_scope", "_send", "_state", "_swallow", "started")

    def __init__(
        self,
        middleware: SessionMiddleware,
        scope: Scope,
        receive: Receive,
        state: RequestState,
        send: Send,
    ) -> None:
        self._middleware = middleware
        self._scope = scope
        self._receive = receive
        self._state = state
        self._send = send
        self._swallow = False
        self.started = False

    def send(self, message: Message) -> Awaitable[None]:
        """The app's ``send``. Returns the awaitable itself rather than being a coroutine:
        a message that needs nothing from us (a body, or the start of a response whose
        session needs no closing flow) goes straight to the server's ``send``."""
        if self._swallow:
            return _swallowed()  # the app's own body after a replacement went in its place
        if message["type"] == "http.response.start":
            self.started = True
            if self._middleware.lifecycle.needs_close(self._state):
                return self._closing(message)
        return self._send(message)

    async def _closing(self, message: Message) -> None:
        """At ``http.response.start``: run the closing flow, then send the edited start
        (or the lifecycle's replacement response)."""
        lifecycle = self._middleware.lifecycle
        outcome = await run_async(
            lifecycle.close(self._state, message["status"], time.time()),
            lifecycle.settings.store,
        )
        if outcome.replacement is not None:
            self._swallow = True
            await self._middleware.replace(
                self._scope, self._receive, self._send, outcome.replacement
            )
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
        name = self._middleware.settings.cookie.name
        edited = edit_headers(headers, outcome.vary, outcome.set_cookie, name)
        return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in edited]
