"""What one request's session began as, and what its response gets: the values the
lifecycle and the adapters pass between them."""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import SessionError, SessionStoreError
from ._rules import Began
from ._session import Session

UNAVAILABLE_BODY = b"Session store unavailable; please retry shortly.\n"
TOO_LARGE_BODY = b"Session too large to be saved.\n"
RETRY_AFTER_SECONDS = 5


@dataclass(slots=True)
class RequestState:
    """How one request's session began, and what the response needs to know of it."""

    session: Session
    kind: str  # "http" or "websocket"
    began: Began
    cookie_value: str | None = None
    cookie_key: str | None = None  # the key the cookie names (before following pointers)
    old_secret: bool = False
    issued_at: float | None = None  # when the loaded key was issued (renewal)
    loaded_user: str | None = None
    loaded_bytes: int = 0
    load_error: SessionStoreError | None = None
    needs_load: bool = False  # the cookie names a session that ``open`` has not read yet


@dataclass(slots=True)
class Replacement:
    """An HTTP response sent in the app's place (``error`` is passed to ``error_app``)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    error: SessionError


@dataclass(slots=True)
class CloseSocket:
    """A websocket closed instead of handed to the app."""

    code: int
    reason: str


@dataclass(slots=True)
class Outcome:
    """What the response gets: a ``Set-Cookie`` value (or none), whether to add ``Vary:
    Cookie``, or a replacement response."""

    set_cookie: str | None = None
    vary: bool = False
    replacement: Replacement | None = None


NOTHING = Outcome()


def plain(status: int, body: bytes, error: SessionError) -> Replacement:
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status == 503:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return Replacement(status, headers, body, error)
