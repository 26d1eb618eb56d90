"""The exceptions users may catch; every one is a ``SessionError``."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error sessionware raises on purpose."""


class SessionStoreError(SessionError):
    """The session store failed or timed out: an outage, answered with 503 by default."""


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


class SessionSerializationError(SessionError, TypeError):
    """A session value the serializer cannot encode: a programming error, never an outage.

    Raised at save, before any store call, so nothing is written and the framework's own
    error handling shows a 500.
    """

    def __init__(self, name: str, value_type: str, detail: str = "") -> None:
        hint = (
            "store only values the serializer supports (JSON types, datetime, date, time, "
            "timedelta, UUID, Decimal, bytes, tuple, set), convert the value first "
            "(e.g. str() or .isoformat()), or pass another serializer= to the middleware"
        )
        reason = f" ({detail})" if detail else ""
        super().__init__(
            f"session value {name!r} cannot be serialized: it holds {_article(value_type)} "
            f"{value_type}{reason}; {hint}"
        )
        self.name = name
        self.value_type = value_type

    @classmethod
    def for_key(cls, key: object) -> SessionSerializationError:
        """A session *key* that is not a ``str``: every store keeps keys as JSON object
        keys (SQL, Redis and file stores as strings), so none is kept as anything else."""
        error = cls.__new__(cls)
        kind = type(key).__name__
        TypeError.__init__(
            error,
            f"session key {key!r} is {_article(kind)} {kind}: session keys must be str, as "
            f"every store keeps them as text; use str({key!r}) or keep the value under a "
            "str key",
        )
        error.name, error.value_type = repr(key), kind
        return error


class SessionTooLargeError(SessionError, ValueError):
    """The session would not fit where it is kept (a cookie, or a store's value limit).

    Browsers drop oversized cookies silently and databases refuse oversized values, so
    this is a programming error answered with 500, never an outage.
    """

    def __init__(self, what: str, size: int, limit: int, fix: str) -> None:
        super().__init__(f"{what} is {size} bytes, over the {limit}-byte limit; {fix}")
        self.size = size
        self.limit = limit


class CookieTooLargeError(SessionTooLargeError):
    """The session cookie would exceed what browsers keep; they would drop it silently."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            "session cookie",
            size,
            limit,
            "store less in the session or use a server-side store",
        )


class map_store_errors:
    """``with map_store_errors("Redis", "load", redis.RedisError, OSError): ...`` turns the
    backend's failures into ``SessionStoreError``, the one error the middleware answers
    with 503. The message keeps only the first line of the cause: later lines (SQL
    parameters, a PostgreSQL DETAIL) may quote a session key.
    """

    __slots__ = ("_errors", "_operation", "_store")

    def __init__(self, store: str, operation: str, *errors: type[BaseException]) -> None:
        self._store = store
        self._operation = operation
        self._errors = errors or (Exception,)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if exc is None or isinstance(exc, SessionError) or not isinstance(exc, self._errors):
            return
        cause = getattr(exc, "orig", None) or exc
        if isinstance(cause, OSError) and cause.strerror:
            detail = cause.strerror  # str() would add the path, which may derive from a key
        else:
            detail = (str(cause).strip().splitlines() or [""])[0]
        raise SessionStoreError(
            f"{self._store} session store failed in {self._operation}: "
            f"{type(cause).__name__}: {detail}"
        ) from exc
