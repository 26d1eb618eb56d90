"""One session table on one engine: the sync executor of ``SQLStore``'s flows.

Connections and transactions, the queue of SQLite writers, the table's preparation at
first use, and the translation of database failures into the errors the middleware
answers (``SessionStoreError`` 503, ``SessionTooLargeError`` 500).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from .._errors import SessionStoreError, SessionTooLargeError, map_store_errors
from .._flow import drive
from ._sql_flows import (
    Execute,
    Flow,
    KeyTaken,
    Mode,
    Rollback,
    SessionFlows,
    Step,
    lost_race,
)
from ._sql_limits import known_limit, read_limit, refusal
from ._sql_schema import prepare_table
from ._sql_statements import SessionStatements

T = TypeVar("T")

# A lost connection during a smaller write is an outage, never a size refusal.
_SMALL_WRITE = 64 * 1024
# First use looks at the table again after a failure: each failure means another process
# took a step of the same upgrade (one per added column or index), so a few suffice.
_PREPARE_ATTEMPTS = 8


class WriterQueue:
    """A lock handed to its waiters in arrival order.

    SQLite has one write lock per database, and its waiters poll with growing sleeps (up
    to 100 ms), missing it again and again under load. The writers of this process queue
    here instead; a plain ``threading.Lock`` would not do either, as the thread that
    releases it usually takes it back at once while the others wait past their timeout.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[threading.Lock] = deque()
        self._held = False

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        if turn.acquire(timeout=timeout):
            return True  # handed over by release(): ours now
        with self._mutex:
            if turn in self._waiting:
                self._waiting.remove(turn)
                return False
        return True  # handed over just as we gave up: ours all the same

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().release()  # still held, by the next in line
            else:
                self._held = False


_SQLITE_WRITERS: dict[str, WriterQueue] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _sqlite_writers(engine: sa.Engine) -> WriterQueue:
    """The one queue of this process's writers to a SQLite database."""
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(str(engine.url), WriterQueue())


@contextmanager
def _committed(transaction: sa.RootTransaction) -> Iterator[None]:
    """Commit when the block ends, unless it rolled back; roll back if it raised.

    A failed rollback is ignored: the connection is gone (MariaDB hangs up on an
    oversized packet), and the block's own error says why, so it must not be masked.
    """
    try:
        yield
    except BaseException:
        if transaction.is_active:
            with suppress(SQLAlchemyError):  # invalidated: the pool replaces the connection
                transaction.rollback()
        raise
    if transaction.is_active:
        transaction.commit()


def _lost(exc: SQLAlchemyError) -> bool:
    """A contended write that lost: the key exists, or InnoDB picked it as deadlock victim."""
    return isinstance(exc, IntegrityError) or lost_race(getattr(exc, "orig", exc))


class Refused(Exception):
    """A write the database refused, perhaps for its size (decided once the connection is
    back in the pool, see ``SessionDatabase.operation``)."""

    def __init__(self, cause: Exception, size: int, certain: bool) -> None:
        super().__init__("refused")
        self.cause = cause
        self.size = size
        self.certain = certain


class SessionDatabase:
    """The table, its statements and the engine they run on, for the sync methods."""

    def __init__(self, engine: sa.Engine, table: sa.Table, timeout: float) -> None:
        self.engine = engine
        self.table = table
        self.dialect = engine.dialect
        dialect = engine.dialect.name
        self.sql = SessionStatements(table, dialect)
        self.flows = SessionFlows(self.sql, self.check_size)
        self.label = f"SQL ({dialect})"
        self.sqlite = dialect == "sqlite"
        self.postgres = dialect == "postgresql"
        self.timeout = timeout
        self._writers = _sqlite_writers(engine) if self.sqlite else None
        #: What one session's packed data may take; see ``SQLStore``.
        self.max_data_bytes = self._initial_limit = known_limit(dialect)
        # One statement needs no transaction around it: on PostgreSQL autocommit saves the
        # BEGIN and COMMIT round trips. (PyMySQL would pay two round trips to switch modes;
        # SQLite: see _sqlite_on_connect.)
        self.single = engine
        if self.postgres:
            self.single = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- running a flow ---------------------------------------------------------------------

    def run(self, mode: Mode, name: str, flow: Flow[T]) -> T:
        """Run the operation ``flow`` (called ``name`` in errors) in its ``mode``."""
        with self.operation(name):
            if mode == "read":
                with self.single.connect() as conn:
                    return self._drive(conn, flow)
            if mode == "statement":
                with self.statement() as conn:
                    return self._drive(conn, flow)
            with self.transaction(durable=mode == "durable") as conn:
                return self._drive(conn, flow)

    def _drive(self, conn: sa.Connection, flow: Flow[T]) -> T:
        return drive(flow, partial(self._step, conn), (KeyTaken,))

    def _step(self, conn: sa.Connection, step: Step) -> Any:
        """One step on ``conn``; a write that lost a race for its key is ``KeyTaken``."""
        if isinstance(step, Rollback):
            conn.rollback()
            return None
        try:
            return self._execute(conn, step)
        except (IntegrityError, OperationalError) as exc:
            if not step.contended or not _lost(exc):
                raise
            raise KeyTaken from exc

    def _execute(self, conn: sa.Connection, step: Execute) -> sa.CursorResult[Any]:
        if step.size is None:
            return conn.execute(step.statement, step.params)
        return self.execute_sized(conn, step.statement, step.params, step.size)

    # -- one operation ----------------------------------------------------------------------

    @contextmanager
    def operation(self, name: str) -> Iterator[None]:
        """Prepare the table at first use; turn database failures into
        ``SessionStoreError``, and a write refused for its size into
        ``SessionTooLargeError``."""
        outage: Exception | None = None
        with map_store_errors(self.label, name, SQLAlchemyError):
            try:
                if not self._ready:
                    self._prepare()
                yield
            except Refused as refused:
                # The connection is back in the pool: asking the server is safe now.
                if self.was_too_large(refused, self.server_limit()):
                    raise self.too_large(refused.size) from refused.cause
                outage = refused.cause
            if outage is not None:
                raise outage

    @contextmanager
    def transaction(self, durable: bool = False) -> Iterator[sa.Connection]:
        """A write transaction, committed unless the block raised or rolled it back.

        ``durable``: on PostgreSQL, the commit waits for the WAL flush. Our engines commit
        without (see ``_sql_engine``); a key that was ended must stay ended after a crash.
        """
        with self.writing(), self.engine.connect() as conn:
            transaction = self.begin_write(conn)
            if durable and self.postgres:
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO on")
            with _committed(transaction):
                yield conn

    @contextmanager
    def statement(self) -> Iterator[sa.Connection]:
        """A connection for writes that are one statement each, committed at the end."""
        with self.writing(), self.single.connect() as conn, _committed(conn.begin()):
            yield conn

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold this process's turn to write to a SQLite database (``WriterQueue``);
        waiting for it counts against ``timeout`` like SQLite's own busy wait."""
        if self._writers is None:
            yield
            return
        if not self._writers.acquire(timeout=self.timeout):
            raise SessionStoreError(
                f"SQL session store (sqlite) timed out after {self.timeout:g} s waiting "
                "for this process's other writers"
            )
        try:
            yield
        finally:
            self._writers.release()

    def begin_write(self, conn: sa.Connection) -> sa.RootTransaction:
        """A transaction for read-then-write: on SQLite it holds the write lock from BEGIN.

        A deferred SQLite transaction that reads first fails instead of waiting when
        another writer commits in between; BEGIN IMMEDIATE waits (busy timeout) instead.
        """
        transaction = conn.begin()
        if self.sqlite:
            dbapi_connection: Any = conn.connection.dbapi_connection
            # A supplied engine may have begun already (Python 3.12 autocommit=False):
            # then its deferred transaction still never loses an update, it may only fail.
            if not dbapi_connection.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        return transaction

    def execute_sized(
        self, conn: sa.Connection, statement: sa.Executable, params: dict[str, Any], size: int
    ) -> sa.CursorResult[Any]:
        """Execute a statement that writes ``size`` bytes of data, noting a size refusal."""
        try:
            return conn.execute(statement, params)
        except SQLAlchemyError as exc:
            verdict = refusal(exc)
            if verdict is None or (verdict == "maybe too large" and size <= _SMALL_WRITE):
                raise
            raise Refused(exc, size, verdict == "too large") from exc

    # -- sizes ------------------------------------------------------------------------------

    def check_size(self, size: int) -> None:
        if self.max_data_bytes is not None and size > self.max_data_bytes:
            raise self.too_large(size)

    def too_large(self, size: int) -> SessionTooLargeError:
        limit = self.max_data_bytes if self.max_data_bytes is not None else size - 1
        return SessionTooLargeError(
            "session data",
            size,
            limit,
            f"the SQL store ({self.engine.dialect.name}) takes at most {limit} bytes per "
            "session; store less in the session",
        )

    def was_too_large(self, refused: Refused, limit: int | None) -> bool:
        """Whether a refused write was refused for its size, given what the server takes
        now (``None``: unknown); a lower limit is remembered."""
        if refused.certain or (limit is not None and refused.size > limit):
            if limit is not None:  # lowered since first use, or overridden
                self.max_data_bytes = self._initial_limit = limit
            return True
        return False

    def server_limit(self) -> int | None:
        """What the database takes now; ``None`` when it cannot be asked (an outage)."""
        try:
            with self.engine.connect() as conn:
                return read_limit(conn)
        except SQLAlchemyError:
            return None

    # -- the table --------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create or upgrade the table now, if this store has not yet (first use)."""
        if not self._ready:
            self._prepare()

    @property
    def ready(self) -> bool:
        return self._ready

    def _prepare(self) -> None:
        with self._ready_lock:
            if self._ready:
                return
            limit = None
            for attempt in range(_PREPARE_ATTEMPTS):
                try:
                    limit = self._prepare_table()
                    break
                except SQLAlchemyError:
                    # Another process created or upgraded the table at the same moment and
                    # our CREATE or ALTER lost; looking again finds its work done.
                    if attempt == _PREPARE_ATTEMPTS - 1:
                        raise
            if self.max_data_bytes == self._initial_limit:  # not set by the application
                self.max_data_bytes = self._initial_limit = limit
            self._ready = True

    def _prepare_table(self) -> int | None:
        with self.transaction() as conn:
            prepare_table(conn, self.table)
            return read_limit(conn)

    def drop_table(self) -> None:
        with map_store_errors(self.label, "drop_table", SQLAlchemyError), self._ready_lock:
            self.table.drop(self.engine, checkfirst=True)
            self._ready = False
