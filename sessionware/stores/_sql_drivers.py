"""The native async drivers ``SQLStore`` uses under ASGI: psycopg (PostgreSQL) and asyncmy
(MariaDB/MySQL), each behind the few calls the async executor needs.

Connections are made with what the sync engine would use (the dialect's own connect
arguments, and the timeouts and session settings of ``_sql_engine``), in autocommit mode:
a load is one statement and one round trip, and transactions are explicit.

asyncmy rather than aiomysql: it is faster here, and aiomysql 0.3 cannot send ``bytes``
parameters with PyMySQL 1.2 (a session's data column).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ._sql_engine import has_input, server_connect_args


class Rows:
    """A statement's result, read whole: rows for a SELECT, ``rowcount`` for a write."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def all(self) -> Sequence[Any]:
        return self.rows


class AsyncDriver:
    """One database's native async client, as the executor uses it."""

    #: What the driver raises for a failure of the database or the connection.
    errors: tuple[type[Exception], ...] = ()
    #: What it raises when an INSERT meets an existing primary key.
    integrity: type[Exception] = Exception

    async def connect(self) -> Any:
        raise NotImplementedError

    async def execute(self, conn: Any, sql: str, params: dict[str, Any], fetch: bool) -> Rows:
        """Run one statement; its rows when ``fetch`` (a SELECT), else its rowcount."""
        raise NotImplementedError

    async def begin(self, conn: Any, durable: bool) -> None:
        raise NotImplementedError

    async def commit(self, conn: Any) -> None:
        raise NotImplementedError

    async def rollback(self, conn: Any) -> None:
        raise NotImplementedError

    async def usable(self, conn: Any) -> bool:
        """Whether a pooled connection is still open (the server may have hung up)."""
        raise NotImplementedError

    async def close(self, conn: Any) -> None:
        raise NotImplementedError


class Psycopg(AsyncDriver):
    """psycopg 3's ``AsyncConnection``."""

    def __init__(self, dialect: sa.Dialect, url: sa.URL, timeout: float) -> None:
        psycopg = importlib.import_module("psycopg")
        self._connect = psycopg.AsyncConnection.connect
        self.errors = (psycopg.Error,)
        self.integrity = psycopg.IntegrityError
        args, kwargs = dialect.create_connect_args(url)
        kwargs.pop("context", None)  # SQLAlchemy's own adapters, for its result layer
        self._args = list(args)
        self._kwargs = {**kwargs, **server_connect_args(url, "psycopg", timeout)}

    async def connect(self) -> Any:
        conn = await self._connect(*self._args, autocommit=True, **self._kwargs)
        # As the sync engine's connections (see _sql_engine._postgres_on_connect).
        await conn.execute("SET synchronous_commit TO off")
        return conn

    async def execute(self, conn: Any, sql: str, params: dict[str, Any], fetch: bool) -> Rows:
        cursor = await conn.execute(sql, params)
        # (``cursor.description`` would build a column object per column, every time.)
        return Rows(await cursor.fetchall() if fetch else (), cursor.rowcount)

    async def begin(self, conn: Any, durable: bool) -> None:
        await conn.execute("BEGIN")
        if durable:
            await conn.execute("SET LOCAL synchronous_commit TO on")

    async def commit(self, conn: Any) -> None:
        await conn.execute("COMMIT")

    async def rollback(self, conn: Any) -> None:
        await conn.execute("ROLLBACK")

    async def usable(self, conn: Any) -> bool:
        if conn.closed:
            return False
        if not has_input(conn.fileno()):
            return True  # idle and silent: healthy, no round trip needed
        try:  # a notice, or the error and hang-up of a server that went away
            await conn.execute("SELECT 1")
        except self.errors:
            return False
        return True

    async def close(self, conn: Any) -> None:
        await conn.close()


class Asyncmy(AsyncDriver):
    """asyncmy's ``Connection`` (the MySQL protocol, in Cython)."""

    def __init__(self, dialect: sa.Dialect, url: sa.URL, timeout: float) -> None:
        asyncmy = importlib.import_module("asyncmy")
        errors = importlib.import_module("asyncmy.errors")
        self._connect = asyncmy.connect
        self.errors = (errors.MySQLError,)
        self.integrity = errors.IntegrityError
        _, kwargs = dialect.create_connect_args(url)  # PyMySQL's: FOUND_ROWS rowcounts
        settings = server_connect_args(url, "pymysql", timeout)
        # asyncmy has no write_timeout, and its read_timeout wraps every read of a reply in
        # ``asyncio.wait_for`` (a task each): one deadline per statement does it cheaper.
        settings.pop("write_timeout", None)
        self._reply_timeout = settings.pop("read_timeout")
        self._kwargs = {**kwargs, **settings}

    async def connect(self) -> Any:
        conn = await self._connect(autocommit=True, **self._kwargs)
        async with conn.cursor() as cursor:
            # As the sync engine (isolation_level): fewer gap locks on InnoDB.
            await cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        return conn

    async def execute(self, conn: Any, sql: str, params: dict[str, Any], fetch: bool) -> Rows:
        async with asyncio.timeout(self._reply_timeout), conn.cursor() as cursor:
            await cursor.execute(sql, params)
            return Rows(await cursor.fetchall() if fetch else (), cursor.rowcount)

    async def begin(self, conn: Any, durable: bool) -> None:
        await conn.begin()

    async def commit(self, conn: Any) -> None:
        await conn.commit()

    async def rollback(self, conn: Any) -> None:
        await conn.rollback()

    async def usable(self, conn: Any) -> bool:
        # The event loop reads its socket all along: a hang-up has closed the transport.
        transport = getattr(conn, "_transport", None)
        return transport is not None and not transport.is_closing()

    async def close(self, conn: Any) -> None:
        conn.close()


def async_driver(dialect: sa.Dialect, url: sa.URL, timeout: float) -> AsyncDriver | None:
    """The native async driver for an engine's URL; ``None`` for SQLite and any driver we
    do not configure (their async twins keep one thread hop per operation)."""
    backend, _, driver = url.drivername.partition("+")
    try:
        if backend == "postgresql" and driver == "psycopg":
            return Psycopg(dialect, url, timeout)
        if backend in ("mysql", "mariadb") and driver == "pymysql":
            return Asyncmy(dialect, url, timeout)
    except ImportError:  # asyncmy missing: the thread hop still works
        return None
    return None
