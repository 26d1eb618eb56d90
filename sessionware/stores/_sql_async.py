"""The async executor of ``SQLStore``'s flows: PostgreSQL and MariaDB under ASGI, on the
event loop, without a thread hop.

The flows and their statements are the sync store's own (``_sql_flows``,
``_sql_statements``); here each statement is compiled once by SQLAlchemy for the
engine's dialect and run on the native async driver (``_sql_drivers``) from a small pool
per event loop. SQLAlchemy's own async engine is not in the way: it costs several times
the round trip it wraps (its greenlet bridge, pool and result layers), which is most of
what a session load is.

Guarantees kept from the sync path: the pool holds at most ``POOL_SIZE`` connections
and a request waits at most ``timeout`` for one; connections get the sync engine's
timeouts and session settings; one the server hung up on is replaced at checkout; one
left in an unknown state (an error inside a transaction, a cancellation) is closed, not
reused. Nothing is logged here: no statement, no parameter, no row.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
import sqlalchemy as sa

from .._errors import map_store_errors
from .._flow import adrive
from ._per_loop import PerLoop
from ._sql_database import Refused, SessionDatabase
from ._sql_drivers import AsyncDriver, Rows
from ._sql_engine import POOL_SIZE
from ._sql_flows import Execute, Flow, KeyTaken, Mode, Rollback, Step, lost_race
from ._sql_limits import refusal

T = TypeVar("T")

_POSTCOMPILE = "__[POSTCOMPILE_{}]"
_SMALL_WRITE = 64 * 1024  # as in _sql_database: a lost connection then is an outage


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as the driver takes it: SQL text, and how to fill its parameters."""

    sql: str
    # (name in the SQL, key the flow passes, value if not passed, bind processor)
    binds: tuple[tuple[str, str, Any, Callable[[Any], Any] | None], ...]
    fetch: bool  # it returns rows (a SELECT)
    results: tuple[Callable[[Any], Any] | None, ...] | None  # processors, if any column has one
    expanding: tuple[str, ...]  # keys given as lists, for ``IN (...)``


def _compile(statement: Any, dialect: sa.Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    binds = []
    expanding = []
    for bind, name in compiled.bind_names.items():
        if bind.expanding:
            expanding.append(bind.key)
            continue
        binds.append((name, bind.key, bind.value, bind.type.bind_processor(dialect)))
    results = None
    columns = getattr(statement, "selected_columns", None)
    if columns is not None:
        processors = tuple(column.type.result_processor(dialect, None) for column in columns)
        results = processors if any(processors) else None
    fetch = columns is not None
    return _Compiled(compiled.string, tuple(binds), fetch, results, tuple(expanding))


class AsyncSessionDatabase:
    """Runs flows on the native async driver; one connection pool per event loop."""

    def __init__(self, db: SessionDatabase, driver: AsyncDriver) -> None:
        self.db = db
        self.driver = driver
        self._compiled: dict[sa.Executable, _Compiled] = {}
        self._errors = (*driver.errors, sa.exc.SQLAlchemyError, OSError)
        # What leaves a connection in an unknown state, so it is closed, never reused.
        self._lost = (*driver.errors, Refused, OSError)
        self._pools: PerLoop[Pool] = PerLoop(
            lambda: Pool(driver, POOL_SIZE, db.timeout), Pool.close
        )

    async def pool(self) -> Pool | None:
        """The running loop's pool; ``None`` off asyncio (trio): then hop to a thread."""
        return await self._pools.get()

    async def aclose(self) -> None:
        await self._pools.aclose()

    def release(self) -> None:
        self._pools.release()

    async def run(self, pool: Pool, mode: Mode, name: str, flow: Flow[T]) -> T:
        """Run the operation ``flow`` (called ``name`` in errors) in its ``mode``."""
        db = self.db
        with map_store_errors(db.label, name, *self._errors):
            if not db.ready:  # once per store: the table, through SQLAlchemy's inspector
                await anyio.to_thread.run_sync(db.prepare)
            try:
                return await self._run(pool, mode, flow)
            except Refused as refused:
                # The connection is gone; asking the server (rarely needed) is safe now.
                limit = await anyio.to_thread.run_sync(db.server_limit)
                if db.was_too_large(refused, limit):
                    raise db.too_large(refused.size) from refused.cause
                raise refused.cause from None

    async def _run(self, pool: Pool, mode: Mode, flow: Flow[T]) -> T:
        driver = self.driver
        conn = await pool.acquire()
        state = _Transaction()
        try:
            if mode in ("transaction", "durable"):
                await driver.begin(conn, durable=mode == "durable")
                state.open = True
            value = await self._drive(conn, flow, state)
            if state.open:
                await driver.commit(conn)
                state.open = False
        except BaseException as exc:
            if isinstance(exc, self._lost) or not isinstance(exc, Exception):
                await pool.discard(conn)  # a failed, timed out or cancelled call
            elif state.open and not await _rolled_back(driver, conn):
                await pool.discard(conn)
            else:
                pool.release(conn)  # our own refusal (a size, a value): nothing went wrong
            raise
        pool.release(conn)
        return value

    async def _drive(self, conn: Any, flow: Flow[T], state: _Transaction) -> T:
        return await adrive(flow, partial(self._step, conn, state), (KeyTaken,))

    async def _step(self, conn: Any, state: _Transaction, step: Step) -> Any:
        """One step on ``conn``; a write that lost a race for its key is ``KeyTaken``."""
        if isinstance(step, Rollback):
            await self.driver.rollback(conn)
            state.open = False
            return None
        try:
            return await self._execute(conn, step)
        except self.driver.errors as exc:
            lost = isinstance(exc, self.driver.integrity) or lost_race(exc)
            if not (step.contended and lost):
                raise
            raise KeyTaken from exc

    async def _execute(self, conn: Any, step: Execute) -> Rows:
        compiled = self._compiled.get(step.statement)
        if compiled is None:
            compiled = self._compiled[step.statement] = _compile(step.statement, self.db.dialect)
        given = step.params
        params = {}
        for name, key, default, process in compiled.binds:
            value = given.get(key, default)
            params[name] = value if process is None else process(value)
        sql = compiled.sql
        for key in compiled.expanding:
            names = [f"{key}_{index}" for index in range(len(given[key]))]
            sql = sql.replace(_POSTCOMPILE.format(key), ", ".join(f"%({n})s" for n in names))
            params.update(zip(names, given[key], strict=True))
        try:
            rows = await self.driver.execute(conn, sql, params, compiled.fetch)
        except self.driver.errors as exc:
            verdict = None if step.size is None else refusal(exc)
            if verdict is None or step.size is None:
                raise
            if verdict == "maybe too large" and step.size <= _SMALL_WRITE:
                raise
            raise Refused(exc, step.size, verdict == "too large") from exc
        if compiled.results is not None and rows.rows:
            rows.rows = [_processed(row, compiled.results) for row in rows.rows]
        return rows


def _processed(row: Any, processors: tuple[Callable[[Any], Any] | None, ...]) -> tuple[Any, ...]:
    return tuple(
        value if process is None else process(value)
        for value, process in zip(row, processors, strict=True)
    )


class _Transaction:
    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open = False


async def _rolled_back(driver: AsyncDriver, conn: Any) -> bool:
    """Roll back an open transaction; ``False`` if the connection cannot say it did."""
    try:
        await driver.rollback(conn)
    except Exception:
        return False
    return True


class Pool:
    """At most ``size`` connections of one event loop, reused last-in first-out; a
    request waits up to ``timeout`` for one (``TimeoutError``), first come first served.

    A *slot* is the right to hold one connection: ``_open`` counts the slots taken. A
    connection given back goes to the first waiter, or to the idle list; a slot freed (a
    connection closed) goes to the first waiter, who opens a connection in it.
    """

    def __init__(self, driver: AsyncDriver, size: int, timeout: float) -> None:
        self._driver = driver
        self._size = size
        self._timeout = timeout
        self._idle: list[Any] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[Any]] = deque()

    async def acquire(self) -> Any:
        if self._idle:
            conn = self._idle.pop()
            if await self._driver.usable(conn):
                return conn
            await self._close_quietly(conn)  # hung up on: a new one in its slot
        elif self._open < self._size:
            self._open += 1
        else:
            handed = await self._wait()
            if handed is not None:
                return handed
        try:
            return await self._driver.connect()
        except BaseException:
            self._free_slot()
            raise

    async def _wait(self) -> Any:
        """A connection handed over by ``release``, or ``None``: a slot to open one in."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                return await waiter
        except BaseException:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())  # handed over just as we gave up
            raise
        finally:
            if not waiter.done():
                waiter.cancel()

    def release(self, conn: Any) -> None:
        self._give_back(conn)

    async def discard(self, conn: Any) -> None:
        await self._close_quietly(conn)
        self._free_slot()

    def _give_back(self, conn: Any) -> None:
        if conn is None:
            self._free_slot()
        elif not self._hand_over(conn):
            self._idle.append(conn)

    def _free_slot(self) -> None:
        if not self._hand_over(None):
            self._open -= 1

    def _hand_over(self, handed: Any) -> bool:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        return False

    async def _close_quietly(self, conn: Any) -> None:
        try:
            await self._driver.close(conn)
        except Exception:  # being thrown away: its own error says nothing more
            return

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await self.discard(conn)
