"""SQLStore's async executor at its edges, on real PostgreSQL and MariaDB: the pool of one
event loop (full, handed over, given up on, failing to connect), the checks of a pooled
connection, and a connection lost in the middle of a write (an outage, whatever the size
of the write, unless the server says the write was too large)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from sessionware._errors import SessionStoreError, SessionTooLargeError
from sessionware._keys import new_key
from sessionware._records import Record
from sessionware.stores._sql import SQLStore
from sessionware.stores._sql_async import Pool
from sessionware.stores._sql_drivers import AsyncDriver, async_driver
from sessionware.stores._sql_engine import has_input
from sessionware.testing.conformance import change, field, live, record
from tests.servers import MYSQL_URL, POSTGRES_URL, require_server
from tests.stores.factories import unique

pytestmark = pytest.mark.anyio

HOUR = 3600.0
SHORT = 0.2  # how long a request waits for a connection in the pool tests


async def call(store: SQLStore, mode: str, operation: str, *args: Any) -> Any:
    """One store operation, through the sync method or its async twin."""
    if mode == "sync":
        return getattr(store, operation)(*args)
    return await getattr(store, "a" + operation)(*args)


def driver_for(url: str) -> AsyncDriver:
    store = SQLStore(url, table="sw_unused")  # builds the engine's settings, connects to nothing
    driver = async_driver(store.engine.dialect, store.engine.url, 5.0)
    store.close()
    assert driver is not None
    return driver


@pytest.fixture
def postgres() -> AsyncDriver:
    require_server("postgres")
    return driver_for(POSTGRES_URL)


@pytest.fixture
async def pool(postgres: AsyncDriver) -> AsyncIterator[Pool]:
    """A pool of one connection: the second request waits."""
    made = Pool(postgres, 1, SHORT)
    yield made
    await made.close()


async def waiting(pool: Pool) -> asyncio.Task[Any]:
    """A request that waits for the pool, once it waits."""
    task = asyncio.create_task(pool.acquire())
    for _ in range(100):
        await asyncio.sleep(0)
        if pool._waiting:
            return task
    raise AssertionError("the request did not wait")


# -- the pool ---------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_a_request_to_a_full_pool_waits_then_times_out(pool: Pool) -> None:
    held = await pool.acquire()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await pool.acquire()
    assert time.monotonic() - started >= SHORT * 0.9
    assert not pool._waiting  # it does not stay in the queue
    pool.release(held)
    assert await pool.acquire() is held  # given back: reused, not a new connection
    pool.release(held)


@pytest.mark.postgres
async def test_a_connection_given_back_goes_to_the_request_that_waited(pool: Pool) -> None:
    held = await pool.acquire()
    request = await waiting(pool)
    pool.release(held)
    assert await request is held
    pool.release(held)


@pytest.mark.postgres
async def test_a_connection_closed_while_a_request_waits_frees_its_slot_for_it(
    pool: Pool,
) -> None:
    held = await pool.acquire()
    request = await waiting(pool)
    await pool.discard(held)  # a failed connection: closed, its slot handed over
    opened = await request
    assert opened is not held
    assert not opened.closed
    pool.release(opened)


@pytest.mark.postgres
async def test_a_connection_handed_to_a_request_that_gave_up_goes_back_to_the_pool(
    pool: Pool,
) -> None:
    held = await pool.acquire()
    request = await waiting(pool)
    pool.release(held)  # handed over...
    request.cancel()  # ...just as the request is cancelled
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await pool.acquire() is held  # not lost with the request
    pool.release(held)


@pytest.mark.postgres
async def test_a_slot_handed_to_a_request_that_gave_up_goes_back_to_the_pool(
    pool: Pool,
) -> None:
    held = await pool.acquire()
    request = await waiting(pool)
    await pool.discard(held)  # its slot handed over...
    request.cancel()  # ...just as the request is cancelled
    with pytest.raises(asyncio.CancelledError):
        await request
    opened = await pool.acquire()  # the slot is free again: no wait, a new connection
    assert opened is not held
    pool.release(opened)


@pytest.mark.postgres
async def test_a_connection_given_back_after_its_request_was_cancelled_stays_in_the_pool(
    pool: Pool,
) -> None:
    held = await pool.acquire()
    request = await waiting(pool)
    request.cancel()  # cancelled first...
    pool.release(held)  # ...then a connection comes back: nobody to hand it to
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await pool.acquire() is held
    pool.release(held)


async def test_a_failed_connect_frees_its_slot() -> None:
    driver = driver_for("postgresql://postgres@127.0.0.1:1/test")  # nothing listens there
    pool = Pool(driver, 1, SHORT)
    for _ in range(2):  # the second fails to connect too, and does not wait for a slot
        with pytest.raises(driver.errors):
            await pool.acquire()
    await pool.close()


@pytest.mark.postgres
async def test_a_pooled_connection_closed_on_our_side_is_replaced(pool: Pool) -> None:
    first = await pool.acquire()
    pool.release(first)
    await first.close()
    second = await pool.acquire()
    assert second is not first
    assert not second.closed
    pool.release(second)


@pytest.mark.postgres
async def test_a_pooled_connection_with_a_notice_waiting_is_kept(
    pool: Pool, postgres: AsyncDriver
) -> None:
    channel = unique("sw_channel")
    listening = await pool.acquire()
    await listening.execute(f"LISTEN {channel}")
    pool.release(listening)
    other = await postgres.connect()
    try:
        await other.execute(f"NOTIFY {channel}")
        deadline = time.monotonic() + 5
        while not has_input(listening.fileno()):  # the notification reached its socket
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await pool.acquire() is listening  # read, answered: healthy, kept
        pool.release(listening)
    finally:
        await postgres.close(other)


# -- a connection lost in the middle of a write -------------------------------------------------


class HangUp:
    """A TCP proxy to MariaDB that hangs up on the client when it sends a chosen statement
    (once ``armed``): a connection lost in the middle of a write, as in an outage."""

    def __init__(self, port: int, statement: bytes) -> None:
        self.upstream = port
        self.statement = statement
        self.armed = threading.Event()
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self._done = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._done.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += (client, server)
            for source, target, requests in ((client, server, True), (server, client, False)):
                thread = threading.Thread(
                    target=self._pipe, args=(source, target, requests), daemon=True
                )
                thread.start()

    def _pipe(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and self.armed.is_set() and self.statement in chunk:
                    self.armed.clear()
                    self.cut.set()
                    break
                target.sendall(chunk)
        except OSError:
            pass
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._done.set()
        self._threads[0].join(timeout=5)
        self.listener.close()
        for end in self._sockets:
            end.close()


@pytest.fixture
def mariadb_store() -> Iterator[tuple[SQLStore, HangUp]]:
    """A store on MariaDB through a proxy that can hang up on an INSERT of its table."""
    with _behind_hang_up(lambda table: f"INSERT INTO {table}".encode()) as made:
        yield made


@pytest.mark.mysql
@pytest.mark.parametrize("size", [1_000, 200_000], ids=["small", "large"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_connection_lost_during_a_write_is_an_outage_whatever_its_size(
    mariadb_store: tuple[SQLStore, HangUp], mode: str, size: int
) -> None:
    store, proxy = mariadb_store
    now, kept = time.time(), new_key()
    assert store.insert(kept, record({"a": field("a", "1")}, now=now))  # the table exists
    limit = store.max_data_bytes
    assert limit is not None
    assert size < limit
    data = record({"big": field("big", "x" * size)}, now=now)
    key = new_key()
    proxy.armed.set()
    # The lost connection may be MariaDB hanging up on a write too large for it: the store
    # asks the server its limit again, and this write is within it.
    with pytest.raises(SessionStoreError, match="failed in insert") as failed:
        await call(store, mode, "insert", key, data)
    assert proxy.cut.is_set()
    assert not isinstance(failed.value, SessionTooLargeError)
    assert store.max_data_bytes == limit
    assert store.load(key, now) is None  # never committed
    if mode == "async":
        assert await store.ainsert(key, data)  # the pool replaced the lost connection
        assert isinstance(await store.aload(key, now), Record)
        await store.aclose()
    else:
        assert store.insert(key, data)
    assert live(store.load(kept, now)).fields == {"a": field("a", "1")}


# -- first use ------------------------------------------------------------------------------------


def test_a_limit_set_before_first_use_is_kept(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", table=unique("sw_sql"))
    try:
        store.max_data_bytes = 1_000
        now, key = time.time(), new_key()
        assert store.insert(key, record({"a": field("a", "1")}, now=now))  # first use
        assert store.max_data_bytes == 1_000  # not replaced by what SQLite takes
        with pytest.raises(SessionTooLargeError):
            store.update(key, change(now, set={"b": field("b", "x" * 2_000)}), now)
        assert live(store.load(key, now)).fields == {"a": field("a", "1")}
    finally:
        store.drop_table()
        store.close()


@pytest.mark.postgres
async def test_the_first_async_operations_at_once_prepare_the_table_once() -> None:
    require_server("postgres")
    store = SQLStore(POSTGRES_URL, table=unique("sw_sql"))
    try:
        now, keys = time.time(), [new_key() for _ in range(4)]
        inserted = await asyncio.gather(*(store.ainsert(key, record(now=now)) for key in keys))
        assert inserted == [True] * len(keys)
        loaded = await asyncio.gather(*(store.aload(key, now) for key in keys))
        assert all(isinstance(one, Record) for one in loaded)
        await store.aclose()
    finally:
        store.drop_table()
        store.close()


@pytest.fixture
def rollback_lost() -> Iterator[tuple[SQLStore, HangUp]]:
    """A store on MariaDB through a proxy that can hang up on a ROLLBACK."""
    with _behind_hang_up(lambda table: b"ROLLBACK") as made:
        yield made


@contextmanager
def _behind_hang_up(trigger: Callable[[str], bytes]) -> Iterator[tuple[SQLStore, HangUp]]:
    """A store on MariaDB (a table of its own) through a proxy that can hang up on the
    statement ``trigger(table)`` begins."""
    require_server("mysql")
    table = unique("sw_sql")
    proxy = HangUp(3306, trigger(table))
    url = MYSQL_URL.replace("127.0.0.1:3306", f"127.0.0.1:{proxy.port}")
    store = SQLStore(url, table=table)
    try:
        yield store, proxy
    finally:
        store.drop_table()
        store.close()
        proxy.close()


@pytest.mark.mysql
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_refusal_whose_rollback_is_lost_still_says_too_large(
    rollback_lost: tuple[SQLStore, HangUp], mode: str
) -> None:
    store, proxy = rollback_lost
    now, key = time.time(), new_key()
    assert store.insert(key, record({"a": field("a", "1")}, now=now))
    store.max_data_bytes = 1_000
    grow = change(now, set={"b": field("b", "x" * 2_000)})
    proxy.armed.set()  # the transaction is rolled back after the refusal: that is lost
    with pytest.raises(SessionTooLargeError):
        await call(store, mode, "update", key, grow, now)
    assert proxy.cut.is_set()
    # The connection whose rollback was lost is not used again; nothing was written.
    assert live(await call(store, mode, "load", key, now)).fields == {"a": field("a", "1")}
    assert await call(store, mode, "update", key, change(now, set={"c": field("c", "3")}), now)
    if mode == "async":
        await store.aclose()
    assert set(live(store.load(key, now)).fields) == {"a", "c"}
