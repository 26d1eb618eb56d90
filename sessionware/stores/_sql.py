"""Sessions in a SQL table through SQLAlchemy Core: SQLite, PostgreSQL, MariaDB/MySQL."""

from __future__ import annotations

import math
import time
from typing import TypeVar

import sqlalchemy as sa

from .._errors import map_store_errors
from .._records import Change, Loaded, Record, SessionInfo
from .._store import (
    DEFAULT_STALE_WINDOW,
    Finding,
    Progress,
    SessionStore,
    Written,
    now_or,
    user_text,
)
from ._sql_async import AsyncSessionDatabase, Pool
from ._sql_check import check_table
from ._sql_database import SessionDatabase
from ._sql_drivers import async_driver
from ._sql_engine import make_engine
from ._sql_flows import Flow, Mode
from ._sql_schema import check_table_name, session_table

T = TypeVar("T")

_MAX_PURGE_PAUSE = 0.05  # seconds a SQLite purge rests between batches, at most


class SQLStore(SessionStore):
    """Sessions in one SQL table; SQLite, PostgreSQL and MariaDB/MySQL.

    ``url_or_engine`` is a URL (``sqlite:///sessions.db``, ``postgresql://…``,
    ``mysql://…``; driverless URLs use psycopg 3 and PyMySQL) or a SQLAlchemy
    ``Engine`` you configured yourself. Constructing the store never connects; at first
    use the table and its indexes are created if missing, and a table made by an earlier
    version gets the columns it lacks (its rows stay live sessions).

    Schema (for people who manage migrations themselves)::

        session_key  VARCHAR(64) PRIMARY KEY  -- ascii_bin on MySQL: keys are case-sensitive
        data         BLOB / BYTEA / LONGBLOB NOT NULL   -- the packed fields; empty for markers
        created_at   DOUBLE NOT NULL                    -- Unix time
        expires_at   DOUBLE NOT NULL, INDEX ix_<table>_expires_at  -- a marker's end
        expiry       VARCHAR(64) NULL                   -- set_expiry(), as JSON
        kind         VARCHAR(8) NOT NULL DEFAULT 'record'   -- record, stale or moved
        target       VARCHAR(64) NULL                   -- the key that replaced this one
        key_at       DOUBLE NULL                        -- key issued (NULL: created_at)
        updated_at   DOUBLE NULL                        -- last write (NULL: created_at)
        user_id      VARCHAR(255) NULL, INDEX ix_<table>_user_id  -- VARBINARY on MySQL

    ``data`` is ``pack_fields()`` of the session: with JSON values, the JSON object of the
    whole session, as earlier versions wrote it. A key that was flushed, rotated away or
    revoked keeps its row as a ``stale`` marker until ``expires_at``; a renewed key a
    ``moved`` one. Markers keep ``user_id`` and, after a rotation or renewal, name the new
    key in ``target``: a revocation that meets them follows it.

    Concurrency: every operation is one transaction at most. A load, an insert (on
    PostgreSQL and SQLite) and a save that only moves the expiry are one statement each.
    A save that changes data reads the row under its lock (``SELECT … FOR UPDATE``; on
    SQLite the database write lock, taken at ``BEGIN IMMEDIATE``), merges the change and
    writes it back, so concurrent saves keep each other's keys. Logout, rotation and
    renewal change a row only while it is a live record, so of two racing, one wins and
    the other finds the marker; a revocation locks the user's rows and follows their
    successors, so a login racing it cannot escape.
    On PostgreSQL, the transactions that end keys commit durably (``synchronous_commit``).
    On SQLite, this process's writers to one database take turns in arrival order.

    Expiry: rows with ``expires_at <= now`` are never loaded nor written to; they stay in
    the table until ``clear_expired()`` deletes them, in batches of ``clear_batch_size``
    rows per transaction (1000; 250 on SQLite) so a big purge never holds long locks. On
    SQLite, whose one write lock other processes wait for by polling, the purge also rests
    between batches as long as each batch took; ``progress`` hears of each batch.
    ``count_expired()`` is one indexed ``COUNT``, and ``check()`` reports the database
    and the table (present, current, or what it lacks) without creating either.

    Size: ``max_data_bytes`` is what the database takes in one write, known at first use
    (MariaDB/MySQL: half of ``max_allowed_packet``, since values travel escaped); larger
    data is refused with ``SessionTooLargeError`` before it is sent, and so is a write the
    database refuses for its size.

    Failures raise ``SessionStoreError``. For a URL, SQLite runs in WAL mode with
    ``timeout`` as busy timeout; on servers ``timeout`` bounds connecting, each statement
    (and lock wait) and the wait for one of the pool's 10 connections (no overflow:
    further requests queue rather than open and close connections), and a pooled
    connection the server hung up on (restart, idle timeout) is replaced at checkout,
    unnoticed. Its logs never show keys or data (parameters hidden, rows never logged).
    An ``Engine`` you pass is used as it is: its pool, timeouts, logging and liveness
    checks are yours.

    Async (ASGI): for a URL on PostgreSQL or MariaDB/MySQL the async twins run on the
    event loop through the native async driver (psycopg's async connection; asyncmy), the
    same statements and transactions as the sync methods, with the same timeouts and
    session settings, and a pool of 10 connections per event loop, closed with its loop.
    SQLite, a supplied ``Engine`` and event loops other than asyncio (trio) take one
    thread hop per operation instead.
    """

    def __init__(
        self,
        url_or_engine: str | sa.Engine,
        table: str = "sessionware_session",
        timeout: float = 5.0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ValueError("timeout must be a positive number of seconds")
        table_name = check_table_name(table)
        if isinstance(url_or_engine, sa.Engine):
            engine = url_or_engine
        elif isinstance(url_or_engine, str):
            engine = make_engine(url_or_engine, timeout)
        else:
            raise TypeError("SQLStore takes a database URL (str) or a SQLAlchemy Engine")
        self._owns_engine = engine is not url_or_engine
        self._db = SessionDatabase(engine, session_table(sa.MetaData(), table_name), timeout)
        self._sql = self._db.sql
        self._flows = self._db.flows
        # One upsert where the dialect has one; MySQL's INSERT, then UPDATE of a dead row.
        self._insert_mode: Mode = "statement" if self._sql.replace_dead is None else "transaction"
        # The async twins: PostgreSQL and MariaDB through their native async drivers, with
        # the engine's settings; SQLite and a supplied Engine hop to a thread.
        driver = async_driver(engine.dialect, engine.url, timeout) if self._owns_engine else None
        self._async = None if driver is None else AsyncSessionDatabase(self._db, driver)
        self.engine = engine
        self.table = self._db.table
        #: Rows deleted per statement (and transaction) by ``clear_expired``.
        self.clear_batch_size = 250 if self._db.sqlite else 1000

    @property
    def max_data_bytes(self) -> int | None:
        """The most bytes of packed data one session may take; ``None`` until first use
        on SQLite and MariaDB/MySQL, whose limits are read from the database."""
        return self._db.max_data_bytes

    @max_data_bytes.setter
    def max_data_bytes(self, value: int | None) -> None:
        self._db.max_data_bytes = value

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"SQLStore({url!r}, table={self.table.name!r})"

    # -- the operations -----------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        return self._db.run("read", "load", self._flows.load(key, now))

    def insert(self, key: str, record: Record) -> bool:
        return self._db.run(self._insert_mode, "insert", self._flows.insert(key, record))

    def update(self, key: str, change: Change, now: float) -> Written:
        if not change.touches_data:
            return self._db.run("statement", "update", self._flows.touch(key, change, now))
        return self._db.run("transaction", "update", self._flows.update(key, change, now))

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        return self._db.run("durable", "delete", self._flows.delete(key, now, stale_until))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        flow = self._flows.rotate(key, new_key, record, now, stale_until)
        return self._db.run("durable", "rotate", flow)

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        flow = self._flows.renew(key, new_key, now, grace_until)
        return self._db.run("transaction", "renew", flow)

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        now = now_or(now)
        batch = max(1, self.clear_batch_size)
        removed = 0
        while True:
            # One short transaction per batch: other requests get the table in between.
            started = time.monotonic()
            flow = self._flows.clear_batch(now, batch)
            found, deleted = self._db.run("transaction", "clear_expired", flow)
            removed += deleted
            if progress is not None:
                progress(removed)
            if found < batch:
                return removed
            if self._db.sqlite:
                # SQLite has one write lock and its waiters poll with growing sleeps: a
                # purge that takes the lock back at once starves writers in other
                # processes. Leaving it free as long as it was held lets them in.
                time.sleep(min(time.monotonic() - started, _MAX_PURGE_PAUSE))

    def count_expired(self, now: float | None = None) -> int:
        return self._db.run("read", "count_expired", self._flows.count_expired(now_or(now)))

    def check(self) -> list[Finding]:
        """The database reached, the table (present, current, or what it lacks) and its
        rows counted; creates nothing, not even a missing SQLite file."""
        with map_store_errors(self._db.label, "check", sa.exc.SQLAlchemyError):
            return check_table(self.engine, self.table)

    # -- the per-user index ---------------------------------------------------------------

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        flow = self._flows.user_sessions(user_text(user_id), now_or(now))
        return self._db.run("read", "user_sessions", flow)

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        flow = self._flows.revoke_session(user_text(user_id), session_id, now_or(now), stale_for)
        return self._db.run("durable", "revoke_session", flow)

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        flow = self._flows.revoke_user(user_text(user_id), except_key, now_or(now), stale_for)
        return self._db.run("durable", "revoke_user", flow)

    # -- administration -------------------------------------------------------------------

    def drop_table(self) -> None:
        """Drop the session table and its indexes (tests, uninstall); created again on use."""
        self._db.drop_table()

    def close(self) -> None:
        """Close pooled connections of an engine this store made; a passed engine is yours.
        Async connections close on their event loops (see ``aclose``)."""
        if self._owns_engine:
            self.engine.dispose()
        if self._async is not None:
            self._async.release()

    # -- async twins: native on PostgreSQL and MariaDB, a thread hop elsewhere -------------

    async def _native(self) -> Pool | None:
        return None if self._async is None else await self._async.pool()

    async def _arun(self, pool: Pool, mode: Mode, name: str, flow: Flow[T]) -> T:
        assert self._async is not None
        return await self._async.run(pool, mode, name, flow)

    async def aload(self, key: str, now: float) -> Loaded:
        if (pool := await self._native()) is None:
            return await super().aload(key, now)
        return await self._arun(pool, "read", "load", self._flows.load(key, now))

    async def ainsert(self, key: str, record: Record) -> bool:
        if (pool := await self._native()) is None:
            return await super().ainsert(key, record)
        flow = self._flows.insert(key, record)
        return await self._arun(pool, self._insert_mode, "insert", flow)

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        if (pool := await self._native()) is None:
            return await super().aupdate(key, change, now)
        if not change.touches_data:
            flow = self._flows.touch(key, change, now)
            return await self._arun(pool, "statement", "update", flow)
        return await self._arun(pool, "transaction", "update", self._flows.update(key, change, now))

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        if (pool := await self._native()) is None:
            return await super().adelete(key, now, stale_until)
        flow = self._flows.delete(key, now, stale_until)
        return await self._arun(pool, "durable", "delete", flow)

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        if (pool := await self._native()) is None:
            return await super().arotate(key, new_key, record, now, stale_until)
        flow = self._flows.rotate(key, new_key, record, now, stale_until)
        return await self._arun(pool, "durable", "rotate", flow)

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        if (pool := await self._native()) is None:
            return await super().arenew(key, new_key, now, grace_until)
        flow = self._flows.renew(key, new_key, now, grace_until)
        return await self._arun(pool, "transaction", "renew", flow)

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        if (pool := await self._native()) is None:
            return await super().aclear_expired(now, progress)
        now, batch, removed = now_or(now), max(1, self.clear_batch_size), 0
        while True:  # one short transaction per batch, as clear_expired
            flow = self._flows.clear_batch(now, batch)
            found, deleted = await self._arun(pool, "transaction", "clear_expired", flow)
            removed += deleted
            if progress is not None:
                progress(removed)
            if found < batch:
                return removed

    async def acount_expired(self, now: float | None = None) -> int:
        if (pool := await self._native()) is None:
            return await super().acount_expired(now)
        flow = self._flows.count_expired(now_or(now))
        return await self._arun(pool, "read", "count_expired", flow)

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        if (pool := await self._native()) is None:
            return await super().auser_sessions(user_id, now)
        flow = self._flows.user_sessions(user_text(user_id), now_or(now))
        return await self._arun(pool, "read", "user_sessions", flow)

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        if (pool := await self._native()) is None:
            return await super().arevoke_session(user_id, session_id, now, stale_for)
        flow = self._flows.revoke_session(user_text(user_id), session_id, now_or(now), stale_for)
        return await self._arun(pool, "durable", "revoke_session", flow)

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        if (pool := await self._native()) is None:
            return await super().arevoke_user(user_id, except_key, now, stale_for)
        flow = self._flows.revoke_user(user_text(user_id), except_key, now_or(now), stale_for)
        return await self._arun(pool, "durable", "revoke_user", flow)

    async def aclose(self) -> None:
        """Close this loop's async connections now, the others on their own loops."""
        if self._async is not None:
            await self._async.aclose()
        self.close()
