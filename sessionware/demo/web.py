"""Plumbing of the demo's forms: reading a POST, redirect-after-post, and the flash message.

The flash lives in its own short-lived cookie, not in the session: writing it into the
session would re-create a session right after ``flush()`` and hide what the demo shows
(that logging out deletes the session cookie).
"""

from __future__ import annotations

import base64
import binascii
import json
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from ..stores.base import SessionStore

SESSION_COOKIE = "sessionid"
FLASH_COOKIE = "sessionware_demo_flash"
MAX_FORM_BYTES = 16_384  # the demo's forms are tiny; refuse anything larger early
MAX_FORM_FIELDS = 20

FlashKind = Literal["ok", "info", "error"]


@dataclass(frozen=True, slots=True)
class Flash:
    """The outcome of the last action, shown once on the page the action redirects to.

    ``details`` are ``(element id, label, value)`` rows, e.g. the keys before and after a
    rotation, each with a stable id for browser tests.
    """

    message: str
    kind: FlashKind = "ok"
    details: tuple[tuple[str, str, str], ...] = ()

    def encode(self) -> str:
        raw = json.dumps([self.message, self.kind, self.details], separators=(",", ":"))
        # Unpadded, so the value needs no quoting in Set-Cookie.
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")

    @staticmethod
    def decode(value: str) -> Flash | None:
        """The flash in a cookie value; ``None`` for anything the demo did not write."""
        try:
            padded = value + "=" * (-len(value) % 4)
            message, kind, details = json.loads(base64.urlsafe_b64decode(padded.encode()))
            rows = tuple((str(i), str(label), str(v)) for i, label, v in details)
        except (ValueError, TypeError, binascii.Error):
            return None
        if not isinstance(message, str) or kind not in ("ok", "info", "error"):
            return None
        return Flash(message, kind, rows)


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded fields of a POST, after refusing cross-site posts.

    The session cookie is ``SameSite=Lax``, so browsers do not send it on cross-site
    POSTs anyway; the ``Origin`` check makes that explicit. Parsing is done here because
    Starlette's ``request.form()`` needs python-multipart, which the demo does not.
    """
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "cross-site form posts are refused")
    content_type = request.headers.get("content-type", "")
    if content_type and not content_type.startswith("application/x-www-form-urlencoded"):
        raise HTTPException(415, "the demo's forms are application/x-www-form-urlencoded")
    body = bytearray()
    async with aclosing(request.stream()) as stream:  # closed even when we stop early
        async for chunk in stream:
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise HTTPException(413, "form too large")
    try:
        fields = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, "malformed form") from exc
    return dict(fields)


def redirect(path: str, flash: Flash) -> RedirectResponse:
    """303 to ``path`` (reloading it never re-submits the form), carrying the flash."""
    response = RedirectResponse(path, status_code=303)
    response.set_cookie(
        FLASH_COOKIE, flash.encode(), max_age=60, httponly=True, samesite="lax", path="/"
    )
    return response


def take_flash(request: Request) -> tuple[Flash | None, bool]:
    """The pending flash, and whether a flash cookie came in (the response then drops it)."""
    value = request.cookies.get(FLASH_COOKIE)
    if value is None:
        return None, False
    return Flash.decode(value), True


@dataclass(frozen=True, slots=True)
class DemoState:
    """What the pages need to know of how the demo is set up (``app.state.demo``)."""

    store: SessionStore
    store_label: str
    user_key: str | None  # the session key that names the user, when the store indexes users
    stale_key_window: float
    renew_after: float | None
    renew_grace: float

    @property
    def server_side(self) -> bool:
        """Whether sessions live on the server (so old keys can be ended and remembered)."""
        return self.store.server_side


def demo_state(request: Request) -> DemoState:
    state: DemoState = request.app.state.demo
    return state


def seconds(value: float) -> str:
    """``60.0`` as ``60 s``, ``0.5`` as ``0.5 s``."""
    return f"{value:g} s"


def text_field(form: dict[str, str], name: str, limit: int) -> str | None:
    """A stripped, non-empty field of at most ``limit`` characters, else ``None``."""
    value = form.get(name, "").strip()
    return value if 0 < len(value) <= limit else None


def int_field(form: dict[str, str], name: str, low: int, high: int) -> int | None:
    """A whole number in ``[low, high]``, else ``None``."""
    value = form.get(name, "").strip()
    if not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if low <= number <= high else None
