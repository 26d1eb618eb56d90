"""Finding the session: ``get_session`` from anything request-like, and ``load_session``
for ASGI's explicit mode (``autoload=False``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._session import Session

_ENVIRON_KEY = "sessionware.session"
_LOADER_KEY = "sessionware.load"


def _holders(obj: Any) -> list[Any]:
    return [obj, getattr(obj, "scope", None), getattr(obj, "environ", None)]


def get_session(obj: Any) -> Session:
    """The request's ``Session`` from an ASGI scope, a WSGI environ, or anything with
    ``.scope`` (Starlette) or ``.environ`` (Flask/Werkzeug)."""
    for holder in _holders(obj):
        if isinstance(holder, Mapping):
            for key in ("session", _ENVIRON_KEY):
                found = holder.get(key)
                if isinstance(found, Session):
                    return found
    raise RuntimeError(
        "no sessionware session here: wrap the app in SessionMiddleware (ASGI) or "
        "WSGISessionMiddleware (WSGI), and pass a scope, environ or request"
    )


async def load_session(obj: Any) -> Session:
    """Load the request's session and return it (ASGI; usable as a FastAPI dependency).

    Needed under ``SessionMiddleware(..., autoload=False)``, where a request's session is
    loaded only when a route asks for it; elsewhere it returns the loaded session. A
    store failure raises ``SessionStoreError``, and the response becomes a 503.
    """
    for holder in _holders(obj):
        if isinstance(holder, Mapping):
            loader: Callable[[], Awaitable[Session]] | None = holder.get(_LOADER_KEY)
            if loader is not None:
                return await loader()
    return get_session(obj)


# FastAPI injects a dependency's request parameter by its annotation, which must be a
# Starlette connection class: give ``load_session`` that annotation when Starlette is
# installed, so ``Depends(load_session)`` works (the core itself never needs Starlette).
try:
    from starlette.requests import HTTPConnection
except ImportError:  # pragma: no cover - the test environment has Starlette
    pass
else:
    load_session.__annotations__["obj"] = HTTPConnection
