"""What a failed Redis call tells: whether its command can have reached the server.

A step is tried a second time only if its first try failed while a connection was being
opened (``unsent``): a command that may have reached the server is never sent again, as
a script run twice does not answer the same (an insert would find its own record and
say "taken"). That second try is what carries a request over a failover: the failed
connection made the cluster client re-read the slot map (or the Sentinel client ask the
sentinels), so it goes to the new master.
"""

from __future__ import annotations

import os

import redis

#: The functions in which redis-py opens a connection (sync, asyncio, Sentinel): an
#: error raised inside one of them came before any command of ours was written.
_CONNECTING = frozenset(
    {"connect", "connect_check_health", "_connect", "_connect_retry", "connect_to"}
    | {"on_connect", "on_connect_check_health"}
)
_REDIS_PY = os.path.dirname(redis.__file__)


class ClosedWhileInUse(redis.ConnectionError):
    """redis-py closed a connection that a command was using (its asyncio cluster client
    may, while it re-reads the cluster's layout): the command failed as on a lost link.
    The error it raises then depends on the event loop: ``AttributeError`` (asyncio: the
    stream is gone) or ``RuntimeError`` (uvloop: "the handler is closed")."""


def unsent(error: BaseException) -> bool:
    """Whether ``error`` is a connection failure raised while a connection was being
    opened, so that the command it stopped was never written."""
    if not isinstance(error, redis.ConnectionError):
        return False
    cause: BaseException | None = error
    while cause is not None:  # a ClosedWhileInUse carries the frames in its cause
        frame = cause.__traceback__
        while frame is not None:
            code = frame.tb_frame.f_code
            if code.co_name in _CONNECTING and code.co_filename.startswith(_REDIS_PY):
                return True
            frame = frame.tb_next
        cause = cause.__cause__
    return False


def _raised_by_a_connection(error: BaseException) -> bool:
    """Whether the innermost redis-py code ``error`` went through is its connection
    layer (what lies below is the socket, the stream or the event loop)."""
    innermost = None
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename.startswith(_REDIS_PY):
            innermost = frame.tb_frame.f_code.co_filename
        frame = frame.tb_next
    return innermost is not None and os.path.basename(innermost) == "connection.py"


class _ConnectionFailures:
    """Turns the errors of a connection closed under a command into the connection
    failure they are (see ``ClosedWhileInUse``); any other error passes unchanged.

    A class, not ``@contextmanager``: it wraps every command, and a generator-based
    context manager costs a few µs per use, more than the rest of the wrapping.
    """

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object
    ) -> None:
        if isinstance(exc, AttributeError | RuntimeError) and _raised_by_a_connection(exc):
            raise ClosedWhileInUse(f"connection closed while in use ({exc})") from exc


_CONNECTION_FAILURES = _ConnectionFailures()  # it keeps no state: one serves every call


def connection_failures() -> _ConnectionFailures:
    """``with connection_failures(): ...`` around a command (see ``_ConnectionFailures``)."""
    return _CONNECTION_FAILURES
