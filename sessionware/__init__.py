"""sessionware: server-side sessions for any Python web app, ASGI or WSGI."""

from __future__ import annotations

from ._access import get_session
from ._errors import CookieTooLargeError, SessionStoreError
from ._serializers import JSONSerializer, Serializer
from ._session import Session
from .asgi import SessionMiddleware
from .wsgi import WSGISessionMiddleware

__all__ = [
    "CookieTooLargeError",
    "JSONSerializer",
    "Serializer",
    "Session",
    "SessionMiddleware",
    "SessionStoreError",
    "WSGISessionMiddleware",
    "get_session",
]

__version__ = "0.1.0"
