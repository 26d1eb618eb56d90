"""sessionware: server-side sessions for any Python web app, ASGI or WSGI."""

from __future__ import annotations

from ._access import get_session, load_session
from ._errors import (
    CookieTooLargeError,
    SessionError,
    SessionSerializationError,
    SessionStoreError,
    SessionTooLargeError,
)
from ._serializers import JSONSerializer, Serializer
from ._session import Session
from .asgi import SessionMiddleware
from .wsgi import WSGISessionMiddleware

__all__ = [
    "CookieTooLargeError",
    "JSONSerializer",
    "Serializer",
    "Session",
    "SessionError",
    "SessionMiddleware",
    "SessionSerializationError",
    "SessionStoreError",
    "SessionTooLargeError",
    "WSGISessionMiddleware",
    "get_session",
    "load_session",
]

__version__ = "0.2.0"
