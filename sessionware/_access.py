"""``get_session``: find the session from a scope, an environ, or a request object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._session import Session

_ENVIRON_KEY = "sessionware.session"


def get_session(obj: Any) -> Session:
    """The request's ``Session`` from an ASGI scope, a WSGI environ, or anything with
    ``.scope`` (Starlette) or ``.environ`` (Flask/Werkzeug)."""
    for holder in (obj, getattr(obj, "scope", None), getattr(obj, "environ", None)):
        if isinstance(holder, Mapping):
            for key in ("session", _ENVIRON_KEY):
                found = holder.get(key)
                if isinstance(found, Session):
                    return found
    raise RuntimeError(
        "no sessionware session here: wrap the app in SessionMiddleware (ASGI) or "
        "WSGISessionMiddleware (WSGI), and pass a scope, environ or request"
    )
