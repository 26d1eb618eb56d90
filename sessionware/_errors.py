"""Exceptions users may catch."""

from __future__ import annotations

import logging


class SessionStoreError(Exception):
    """The session store failed or timed out; the middleware answers 503."""


class CookieTooLargeError(ValueError):
    """The session cookie would exceed what browsers keep; they would drop it silently."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"session cookie is {size} bytes, over the {limit}-byte limit browsers keep; "
            "store less in the session or use a server-side store"
        )
        self.size = size
        self.limit = limit


UNAVAILABLE_BODY = b"Session store unavailable; please retry shortly.\n"
TOO_LARGE_BODY = b"Session too large for a cookie.\n"
RETRY_AFTER_SECONDS = 5


def plain_response(status: int, body: bytes) -> list[tuple[str, str]]:
    """Headers of the short text answers the middlewares give in the app's place."""
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status == 503:
        headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))
    return headers


def log_failure(logger: logging.Logger, action: str, exc: Exception) -> None:
    """Log a store or cookie failure by its own message only.

    The chained driver traceback is left out on purpose: it may quote SQL parameters or
    command arguments, which include session keys.
    """
    logger.error("session %s failed: %s: %s", action, type(exc).__name__, exc)
