"""The engine ``SQLStore`` builds from a URL: drivers, timeouts, pool, and quiet logging.

Kept apart from the store so ``_sql`` reads as the operations only.
"""

from __future__ import annotations

import math
import select
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

# What driverless URLs become, and the extra that installs each driver.
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",  # the mysql dialect detects MariaDB by itself
}
_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}
# Connections each store keeps (see make_engine); more requests than this queue for one.
POOL_SIZE = 10


def engine_url(url: str) -> tuple[sa.URL, str | None]:
    """The SQLAlchemy URL for a store URL, and the sessionware extra that provides its driver.

    ``postgresql://`` becomes ``postgresql+psycopg://``; ``mysql://`` and ``mariadb://``
    become ``mysql+pymysql://``. A URL that names its driver is kept as it is.
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"not a database URL: {exc}") from None
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and _is_memory_sqlite(parsed):
        raise ValueError(
            "an in-memory SQLite database is private to one connection and lost on close; "
            "give a file path (sqlite:///sessions.db) or use MemoryStore"
        )
    return parsed, _EXTRAS.get(driver)


def _is_memory_sqlite(url: sa.URL) -> bool:
    database = url.database or ""
    return database in ("", ":memory:") or url.query.get("mode") == "memory"


def make_engine(url: str, timeout: float) -> sa.Engine:
    """An engine with timeouts on connect, statements and pool waits; it does not connect.

    Its logs never show session keys or data: parameters are hidden, and result rows,
    which SQLAlchemy logs at DEBUG, are never logged (see ``_RowQuietEngine``).
    """
    parsed, extra = engine_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    kwargs: dict[str, Any] = {
        "pool_timeout": timeout,
        # An error message (and its log line) never shows a session key.
        "hide_parameters": True,
        # A fixed pool and no overflow: past its pool_size, SQLAlchemy's default pool
        # closes every connection handed back, so a steady 16 concurrent requests opened
        # ~200 PostgreSQL connections a second (p99 100-300 ms). A session query takes well
        # under a millisecond, so waiting for a pooled connection is the cheaper queue.
        "pool_size": POOL_SIZE,
        "max_overflow": 0,
    }
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": timeout, "check_same_thread": False}
    else:
        kwargs["connect_args"] = server_connect_args(parsed, driver, timeout)
        # A server restart leaves dead pooled connections; they must be replaced unnoticed.
        # Our drivers get the cheap check below; any other driver a ping on each checkout.
        kwargs["pool_pre_ping"] = driver not in _SOCKET_OF
        if backend in ("mysql", "mariadb"):
            # Fewer gap locks on InnoDB, so concurrent requests wait on each other less.
            kwargs["isolation_level"] = "READ COMMITTED"
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except ImportError as exc:
        if extra is None:
            raise
        raise ImportError(
            f"the {driver} driver for {backend} is not installed: "
            f"pip install 'sessionware[{extra}]'"
        ) from exc
    except sa.exc.ArgumentError as exc:  # e.g. an unknown database or driver name
        raise ValueError(f"unusable database URL: {exc}") from None
    engine.__class__ = _RowQuietEngine
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
    if backend == "postgresql":
        event.listen(engine, "connect", _postgres_on_connect)
    if driver in _SOCKET_OF:
        event.listen(engine, "checkout", _PingIfHungUp(engine.dialect, _SOCKET_OF[driver]))
    return engine


class _RowQuietEngine(sa.Engine):
    """An engine that never logs result rows, whatever the level of its loggers.

    ``hide_parameters`` keeps keys and data out of logged statements and errors, but at
    DEBUG SQLAlchemy also logs every fetched row (session keys, whole sessions). It asks
    ``engine._should_log_debug()`` before it does, and nothing else: answering ``False``
    here (and on the engines ``execution_options()`` derives) stops exactly that, while
    statements still log at INFO with their parameters hidden. A logger filter would not
    do: logging configuration (``dictConfig``) can replace filters and re-enable loggers.
    """

    def _should_log_debug(self) -> bool:
        return False


class _RowQuietOptionEngine(OptionEngine):
    def _should_log_debug(self) -> bool:
        return False


_RowQuietEngine._option_cls = _RowQuietOptionEngine


def _postgres_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Commit session writes without waiting for the WAL flush.

    A crash may then lose the last moments of session changes (never corrupt them), and
    commits stop queueing behind the flushes of a big ``clear_expired()``. Operations
    that end a key (logout, login rotation, revocation) turn it back on for their own
    transaction, so an ended key never comes back after a crash.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET synchronous_commit TO off")
    finally:
        cursor.close()
    dbapi_connection.commit()  # a plain SET in a committed transaction lasts the session


class _PingIfHungUp:
    """Pool checkout hook: ping only connections whose socket shows input or a hang-up.

    ``pool_pre_ping`` costs a round trip per checkout. An idle, healthy connection has
    nothing to read; a server that restarted or timed the connection out has sent an
    error and closed the socket. Only then do we ping, and a failed ping makes the pool
    reconnect (``DisconnectionError``) instead of failing the request.
    """

    def __init__(self, dialect: sa.Dialect, socket_of: Callable[[Any], Any]) -> None:
        self.dialect = dialect
        self.socket_of = socket_of

    def __call__(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        try:
            sock = self.socket_of(dbapi_connection)
            if sock is not None and not has_input(sock):
                return
            self.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure here means "do not use this connection"
            raise sa.exc.DisconnectionError(f"pooled connection is dead: {exc}") from exc


def has_input(sock: Any) -> bool:
    """Whether a socket (or file descriptor) has something to read, or was hung up on."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))  # POLLHUP / POLLERR are always reported
    readable, _, broken = select.select([sock], [], [sock], 0)  # pragma: no cover - Windows
    return bool(readable or broken)  # pragma: no cover


# How to reach the socket of a DBAPI connection, for the drivers we configure.
_SOCKET_OF: dict[str, Callable[[Any], Any]] = {
    "psycopg": lambda conn: conn.fileno(),
    "pymysql": lambda conn: conn._sock,  # private but stable; None once closed
}


def server_connect_args(url: sa.URL, driver: str, timeout: float) -> dict[str, Any]:
    """Connect arguments that bound connecting, statements and lock waits by ``timeout``."""
    if driver == "psycopg":
        options = str(url.query.get("options", ""))
        if "statement_timeout" not in options:
            options = f"{options} -c statement_timeout={math.ceil(timeout * 1000)}".strip()
        # libpq takes whole seconds and treats anything under 2 as 2.
        return {"connect_timeout": max(2, math.ceil(timeout)), "options": options}
    if driver == "pymysql":
        return {
            "connect_timeout": timeout,
            # Lock waits fail cleanly on the server before the socket read gives up.
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {math.ceil(timeout)}",
            "read_timeout": math.ceil(timeout) + 1.0,
            "write_timeout": timeout,
        }
    return {}


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # SQLAlchemy's documented recipe: the driver emits no BEGIN of its own. A statement
    # alone is its own transaction; SQLStore emits BEGIN IMMEDIATE where it needs more.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer; NORMAL sync is durable across crashes of
        # the application (only a power loss may lose the last commits).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
