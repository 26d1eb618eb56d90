"""Sessions in a SQL table through SQLAlchemy Core: SQLite, PostgreSQL, MariaDB/MySQL."""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from .._errors import SessionStoreError
from .._expiry import Expiry
from .._keys import key_fingerprint
from .._records import Change, Record, apply_change
from .._serializers import Serializer
from ._sql_schema import check_table_name, make_engine, session_table
from .base import SessionStore, now_or

logger = logging.getLogger("sessionware")

_P = ParamSpec("_P")
_T = TypeVar("_T")

# One lock per SQLite database in this process: its writers queue on it instead of
# polling SQLite's busy handler, whose growing sleeps (up to 100 ms) let a waiter miss the
# lock again and again under load. Other processes still meet the busy timeout.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _sqlite_writer_lock(engine: sa.Engine) -> threading.Lock:
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(str(engine.url), threading.Lock())


_MAX_PURGE_PAUSE = 0.05  # seconds a SQLite purge rests between batches, at most

_KEY: sa.BindParameter[str] = sa.bindparam("k")
_NOW: sa.BindParameter[float] = sa.bindparam("now")


def _store_operation(
    method: Callable[Concatenate[SQLStore, _P], _T],
) -> Callable[Concatenate[SQLStore, _P], _T]:
    """Create the table on first use; turn database failures into ``SessionStoreError``."""

    @functools.wraps(method)
    def operation(self: SQLStore, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            if not self._table_ready:
                self._create_table()
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            # The first line only: PostgreSQL's DETAIL lines may quote a session key.
            detail = (str(cause).strip().splitlines() or [""])[0]
            raise SessionStoreError(
                f"SQL session store ({self.engine.dialect.name}) failed in "
                f"{method.__name__}: {cause.__class__.__name__}: {detail}"
            ) from exc

    return operation


class SQLStore(SessionStore):
    """Sessions in one SQL table; SQLite, PostgreSQL and MariaDB/MySQL.

    ``url_or_engine`` is a URL (``sqlite:///sessions.db``, ``postgresql://…``,
    ``mysql://…``; driverless URLs use psycopg 3 and PyMySQL) or a SQLAlchemy
    ``Engine`` you configured yourself. Constructing the store never connects; the
    table and its expiry index are created, if missing, at first use.

    Schema (for people who manage migrations themselves)::

        session_key  VARCHAR(64) PRIMARY KEY  -- ascii_bin on MySQL: keys are case-sensitive
        data         BLOB / BYTEA / LONGBLOB NOT NULL   -- the serializer's bytes
        created_at   DOUBLE NOT NULL                    -- Unix time
        expires_at   DOUBLE NOT NULL, INDEX ix_<table>_expires_at
        expiry       VARCHAR(64) NULL                   -- set_expiry(), as JSON

    Concurrency: ``update`` reads, merges and writes the row in one transaction
    holding its row lock (``SELECT … FOR UPDATE``; on SQLite the database write lock,
    taken at ``BEGIN IMMEDIATE``), so concurrent saves of one session keep each other's
    keys, and a deleted or expired row is never written back. ``create`` only inserts:
    it returns ``False`` when a live row holds the key, also when a concurrent request
    inserted it first; an expired row under the key is replaced.

    Expiry: rows with ``expires_at <= now`` are never loaded nor updated; they stay in
    the table until ``clear_expired()`` deletes them, in batches of
    ``clear_batch_size`` rows per transaction (1000; 250 on SQLite) so a big purge never
    holds long locks. On SQLite, whose one write lock other processes wait for by polling,
    the purge also rests between batches as long as each batch took.

    Failures raise ``SessionStoreError``. For a URL, SQLite runs in WAL mode with
    ``timeout`` as busy timeout; on servers ``timeout`` bounds connecting, each statement
    (and lock wait) and the wait for one of the pool's 10 connections (no overflow:
    further requests queue rather than open and close connections), and a pooled
    connection the server hung up on (restart, idle timeout) is replaced at checkout,
    unnoticed. An ``Engine`` you pass is used as it is: its pool, timeouts and liveness
    checks are yours.
    """

    def __init__(
        self,
        url_or_engine: str | sa.Engine,
        table: str = "sessionware_session",
        serializer: Serializer | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(serializer)
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        self.table = session_table(sa.MetaData(), check_table_name(table))
        self._owns_engine = not isinstance(url_or_engine, sa.Engine)
        if isinstance(url_or_engine, sa.Engine):
            self.engine = url_or_engine
        elif isinstance(url_or_engine, str):
            self.engine = make_engine(url_or_engine, timeout)
        else:
            raise TypeError("SQLStore takes a database URL (str) or a SQLAlchemy Engine")
        #: Rows deleted per statement (and transaction) by ``clear_expired``.
        self.clear_batch_size = 250 if self.engine.dialect.name == "sqlite" else 1000
        self._sqlite = self.engine.dialect.name == "sqlite"
        self._writer_lock = _sqlite_writer_lock(self.engine) if self._sqlite else None
        self._timeout = timeout
        # One statement needs no transaction around it: on PostgreSQL autocommit saves the
        # BEGIN and COMMIT round trips. (PyMySQL would pay two round trips to switch modes;
        # SQLite: see _sqlite_on_connect.)
        self._single = self.engine
        self._postgres = self.engine.dialect.name == "postgresql"
        if self._postgres:
            self._single = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._table_ready = False
        self._table_lock = threading.Lock()
        self._build_statements()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"SQLStore({url!r}, table={self.table.name!r})"

    def _build_statements(self) -> None:
        c = self.table.c
        values: dict[str, sa.BindParameter[Any]] = {
            "data": sa.bindparam("v_data"),
            "expires_at": sa.bindparam("v_expires"),
            "expiry": sa.bindparam("v_expiry"),
        }
        live = (c.session_key == _KEY) & (c.expires_at > _NOW)
        self._select = sa.select(c.data, c.created_at, c.expires_at, c.expiry).where(live)
        self._select_locked = self._select.with_for_update()
        self._insert = sa.insert(self.table)
        self._replace_expired = (
            sa.update(self.table)
            .where(c.session_key == _KEY, c.expires_at <= _NOW)
            .values(created_at=sa.bindparam("v_created"), **values)
        )
        self._write = sa.update(self.table).where(c.session_key == _KEY).values(**values)
        self._touch = sa.update(self.table).where(live).values(expires_at=values["expires_at"])
        self._touch_expiry = self._touch.values(expiry=values["expiry"])
        self._delete = sa.delete(self.table).where(c.session_key == _KEY)
        self._expired_keys = sa.select(c.session_key).where(c.expires_at <= _NOW)
        self._delete_expired = sa.delete(self.table).where(
            c.session_key.in_(sa.bindparam("keys", expanding=True)), c.expires_at <= _NOW
        )

    def _create_table(self) -> None:
        with self._table_lock:
            if self._table_ready:
                return
            try:
                self._create_all()
            except SQLAlchemyError:
                # Another process may have created it between our check and CREATE.
                self._create_all()
            self._table_ready = True

    def _create_all(self) -> None:
        # In one transaction, so a crash never leaves the table without its index (and on
        # SQLite, concurrent processes take turns).
        with self._writing(), self.engine.connect() as conn, self._write_transaction(conn):
            self.table.metadata.create_all(conn, checkfirst=True)

    # -- the store operations -------------------------------------------------------------

    @_store_operation
    def load(self, key: str, now: float) -> Record | None:
        with self._single.connect() as conn:
            row = conn.execute(self._select, {"k": key, "now": now}).first()
        return None if row is None else self._decode(key, row)

    @_store_operation
    def create(self, key: str, record: Record) -> bool:
        params = {
            "session_key": key,
            "data": self.serializer.dumps(record.data),
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "expiry": _pack_expiry(record.expiry),
        }
        with self._writing(), self._single.connect() as conn:
            try:
                with conn.begin():
                    conn.execute(self._insert, params)
                return True
            except IntegrityError:
                pass  # the key is taken: by a live row, a concurrent insert, or a dead row
            with conn.begin():
                # Guarded by the WHERE clause, so of two racing creates only one replaces.
                replaced = conn.execute(
                    self._replace_expired,
                    {
                        "k": key,
                        "now": time.time(),
                        "v_data": params["data"],
                        "v_created": record.created_at,
                        "v_expires": record.expires_at,
                        "v_expiry": params["expiry"],
                    },
                )
            return replaced.rowcount == 1

    @_store_operation
    def update(self, key: str, change: Change, now: float) -> bool:
        if not change.touches_data:
            # Only the expiry moves: one UPDATE guarded by liveness, nothing to merge.
            params = {"k": key, "now": now, "v_expires": change.expires_at}
            stmt = self._touch
            if change.expiry_changed:
                stmt = self._touch_expiry
                params["v_expiry"] = _pack_expiry(change.expiry)
            with self._writing(), self._single.begin() as conn:
                return conn.execute(stmt, params).rowcount == 1
        with self._writing(), self.engine.connect() as conn, self._write_transaction(conn):
            row = conn.execute(self._select_locked, {"k": key, "now": now}).first()
            current = None if row is None else self._decode(key, row)
            if current is None:
                return False
            new = apply_change(current, change)
            conn.execute(
                self._write,
                {
                    "k": key,
                    "v_data": self.serializer.dumps(new.data),
                    "v_expires": new.expires_at,
                    "v_expiry": _pack_expiry(new.expiry),
                },
            )
            return True

    @_store_operation
    def delete(self, key: str) -> bool:
        with self._writing(), self.engine.begin() as conn:
            if self._postgres:
                # Our engines commit session writes without waiting for the WAL flush
                # (make_engine); a logout must survive a crash, so it waits.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")
            return conn.execute(self._delete, {"k": key}).rowcount > 0

    @_store_operation
    def clear_expired(self, now: float | None = None) -> int:
        now = now_or(now)
        batch = max(1, self.clear_batch_size)
        select_batch = self._expired_keys.limit(batch)
        removed = 0
        with self.engine.connect() as conn:
            while True:
                # One short transaction per batch: other requests get the table in between.
                started = time.monotonic()
                with self._writing(), self._write_transaction(conn):
                    keys = conn.execute(select_batch, {"now": now}).scalars().all()
                    if keys:
                        result = conn.execute(self._delete_expired, {"keys": keys, "now": now})
                        removed += result.rowcount
                if len(keys) < batch:
                    return removed
                if self._sqlite:
                    # SQLite has one write lock and its waiters poll with growing sleeps: a
                    # purge that takes the lock back at once starves writers in other
                    # processes. Leaving it free as long as it was held lets them in.
                    time.sleep(min(time.monotonic() - started, _MAX_PURGE_PAUSE))

    # -- helpers --------------------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold this process's SQLite write lock around a write transaction (see above);
        waiting for it counts against ``timeout`` like SQLite's own busy wait."""
        if self._writer_lock is None:
            yield
            return
        if not self._writer_lock.acquire(timeout=self._timeout):
            raise SessionStoreError(
                f"SQL session store (sqlite) timed out after {self._timeout:g} s waiting "
                "for this process's other writers"
            )
        try:
            yield
        finally:
            self._writer_lock.release()

    def _write_transaction(self, conn: sa.Connection) -> sa.RootTransaction:
        """A transaction for read-then-write: on SQLite it holds the write lock from BEGIN.

        A deferred SQLite transaction that reads first fails instead of waiting when
        another writer commits in between; BEGIN IMMEDIATE waits (busy timeout) instead.
        """
        transaction = conn.begin()
        if self._sqlite:
            dbapi_connection: Any = conn.connection.dbapi_connection
            # A supplied engine may have begun already (Python 3.12 autocommit=False):
            # then its deferred transaction still never loses an update, it may only fail.
            if not dbapi_connection.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        return transaction

    def _decode(self, key: str, row: Sequence[Any]) -> Record | None:
        raw_data, created_at, expires_at, raw_expiry = row
        try:
            data = self.serializer.loads(raw_data)
            if not isinstance(data, dict):
                raise ValueError("session data is not a mapping")
            expiry = None if raw_expiry is None else Expiry.from_json(json.loads(raw_expiry))
        except Exception as exc:  # a custom serializer may raise anything on foreign bytes
            logger.warning(
                "session %s has undecodable data in the SQL store (%s); treated as absent",
                key_fingerprint(key),
                exc.__class__.__name__,
            )
            return None
        return Record(data, created_at, expires_at, expiry)

    def drop_table(self) -> None:
        """Drop the session table and its index (tests, uninstall); created again on use."""
        try:
            with self._table_lock:
                self.table.drop(self.engine, checkfirst=True)
                self._table_ready = False
        except SQLAlchemyError as exc:
            raise SessionStoreError(f"SQL session store failed to drop its table: {exc}") from exc

    def close(self) -> None:
        """Close pooled connections of an engine this store made; a passed engine is yours."""
        if self._owns_engine:
            self.engine.dispose()


def _pack_expiry(expiry: Expiry | None) -> str | None:
    return None if expiry is None else json.dumps(expiry.to_json(), separators=(",", ":"))
