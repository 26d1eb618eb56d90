"""MemcachedStore on real servers: long TTLs, CAS give-up, eviction, size limits, outages.

The contract itself is checked by the conformance kit (``test_conformance.py``). Some
tests start a private ``memcached`` of their own: a tiny one to evict from, one with a
small item limit, one to freeze or stop.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client, PooledClient

from sessionware._errors import SessionStoreError, SessionTooLargeError
from sessionware._keys import new_key
from sessionware._records import Change, Record
from sessionware.stores import CachedStore, MemcachedStore, SQLStore
from sessionware.stores._memcached_layout import THIRTY_DAYS, exptime, index_name
from sessionware.testing.conformance import StoreConformance
from tests.servers import MEMCACHED_URL, free_port, in_ci, require_server
from tests.stores.factories import unique

pytestmark = [pytest.mark.memcached, pytest.mark.anyio]

HOUR = 3600.0
DAY = 86400.0
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


def field(name: str, value: str) -> bytes:
    return b'{"' + name.encode() + b'":"' + value.encode() + b'"}'


def record(now: float, ttl: float = HOUR, user: str | None = None, **values: str) -> Record:
    fields = {name: field(name, value) for name, value in values.items()}
    return Record(fields, now, now + ttl, None, key_at=now, updated_at=now, user=user)


async def call(store: MemcachedStore, mode: str, operation: str, *args: Any) -> Any:
    """One store operation, through the sync method or its async twin."""
    if mode == "sync":
        return getattr(store, operation)(*args)
    return await getattr(store, "a" + operation)(*args)


@pytest.fixture
def raw() -> Iterator[Client]:
    """A plain client on the shared server, to look behind the store's back."""
    require_server("memcached")
    client = Client(("127.0.0.1", 11211), timeout=5, default_noreply=False)
    yield client
    client.close()


@pytest.fixture
def store(raw: Client) -> Iterator[MemcachedStore]:
    made = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":")
    yield made
    made.delete_all()
    made.close()


def item_name(store: MemcachedStore, key: str) -> bytes:
    return store.prefix.encode() + key.encode()


# -- a private server ---------------------------------------------------------------------


@contextmanager
def private_memcached(*options: str) -> Iterator[PrivateMemcached]:
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.access(binary, os.X_OK):
        if in_ci():
            pytest.fail("memcached is not installed (CI=true: these tests must run)")
        pytest.skip("memcached is not installed")
    server = PrivateMemcached(binary, free_port(), options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivateMemcached:
    """A ``memcached`` of this test alone, on its own port: frozen or stopped at will."""

    def __init__(self, binary: str, port: int, options: tuple[str, ...]) -> None:
        self.port = port
        self.url = f"memcached://127.0.0.1:{port}"
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # memcached refuses root
        command = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user, *options]
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail(f"private memcached did not start on port {self.port}")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP), and wait until it is stopped: a signal is delivered
        when its threads next run, and one might still answer a request meanwhile."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        threads = Path(f"/proc/{self.process.pid}/task")
        deadline = time.monotonic() + 10
        while not all(_stopped(stat) for stat in threads.glob("*/stat")):
            if time.monotonic() > deadline:
                pytest.fail("private memcached did not stop on SIGSTOP")
            time.sleep(0.005)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None


def _stopped(stat: Path) -> bool:
    try:
        return stat.read_text().rpartition(")")[2].split()[0] == "T"
    except OSError:  # the thread is gone
        return True


# -- expiry ----------------------------------------------------------------------------------


def test_expiry_beyond_thirty_days_is_a_unix_time() -> None:
    now = 1_800_000_000.0
    assert exptime(now + 10, now) == 11  # seconds from now, one to spare
    assert exptime(now + THIRTY_DAYS - 1, now) == THIRTY_DAYS
    assert exptime(now + 40 * DAY, now) == int(now + 40 * DAY) + 1  # Memcached's rule
    assert exptime(now - 5, now) == 1  # dead already: gone in a second
    assert exptime(4_000_000_000.0, now) == 0  # past 2038: no TTL, the header rules


@MODES
async def test_a_session_of_sixty_days_is_kept_sixty_days(
    store: MemcachedStore, raw: Client, mode: str
) -> None:
    key, now = new_key(), time.time()
    assert await call(store, mode, "insert", key, record(now, ttl=60 * DAY, a="1"))
    assert isinstance(await call(store, mode, "load", key, now), Record)
    reply = raw.raw_command(b"mg " + item_name(store, key) + b" t", b"\r\n")
    # Memcached turns a Unix time into its own clock, which may be a few seconds off.
    assert abs(int(reply.split(b" t")[1]) - 60 * DAY) <= 10


@MODES
async def test_a_moved_expiry_moves_the_items_ttl(
    store: MemcachedStore, raw: Client, mode: str
) -> None:
    key, now = new_key(), time.time()
    assert await call(store, mode, "insert", key, record(now, ttl=HOUR, a="1"))
    later = Change(set={"b": field("b", "2")}, expires_at=now + 45 * DAY)
    assert await call(store, mode, "update", key, later, now) is True
    reply = raw.raw_command(b"mg " + item_name(store, key) + b" t", b"\r\n")
    assert abs(int(reply.split(b" t")[1]) - 45 * DAY) <= 10


@MODES
async def test_clear_expired_removes_only_this_stores_dead_items(
    store: MemcachedStore, raw: Client, mode: str
) -> None:
    dead, alive, now = new_key(), new_key(), time.time()
    assert await call(store, mode, "insert", dead, record(now, ttl=HOUR, a="1"))
    assert await call(store, mode, "insert", alive, record(now, ttl=3 * HOUR, a="1"))
    foreign = store.prefix.encode() + b"not-a-session"
    assert raw.set(foreign, b"someone else's", expire=60)
    assert await call(store, mode, "clear_expired", now + 2 * HOUR) == 1
    assert raw.get(item_name(store, dead)) is None
    assert raw.get(item_name(store, alive)) is not None
    assert raw.get(foreign) == b"someone else's"


# -- CAS -------------------------------------------------------------------------------------


class RivalClient(PooledClient):  # type: ignore[misc]
    """A real client that rewrites the item (bumping its CAS token) before every ``cas``:
    the store's write always loses, as under a storm of concurrent saves."""

    def cas(self, key: bytes, value: bytes, cas: Any, *args: Any, **kwargs: Any) -> Any:
        self.set(key, self.get(key), noreply=False)
        return super().cas(key, value, cas, *args, **kwargs)


def test_a_save_that_keeps_losing_its_cas_gives_up_with_a_store_error(raw: Client) -> None:
    rival = RivalClient(("127.0.0.1", 11211), timeout=5, default_noreply=False)
    store = MemcachedStore(prefix=unique("swtest") + ":", client=rival)
    try:
        key, now = new_key(), time.time()
        assert store.insert(key, record(now, a="1"))
        with pytest.raises(SessionStoreError, match="kept changing"):
            store.update(key, Change(set={"b": field("b", "2")}, expires_at=now + HOUR), now)
        loaded = store.load(key, now)
        assert isinstance(loaded, Record)
        assert dict(loaded.fields) == {"a": field("a", "1")}
    finally:
        store.delete_all()
        rival.close()


# -- eviction ------------------------------------------------------------------------------


@MODES
async def test_an_evicted_session_reads_as_absent_and_is_not_written(mode: str) -> None:
    with private_memcached("-m", "2") as server:
        store = MemcachedStore(server.url, prefix="ev:")
        try:
            key, now = new_key(), time.time()
            assert await call(store, mode, "insert", key, record(now, a="x" * 900))
            filler = Client(("127.0.0.1", server.port), timeout=5, default_noreply=False)
            value = filler.get(b"ev:" + key.encode())
            for n in range(4000):  # same size, same slab: the oldest item goes first
                filler.set(b"fill:%d" % n, value, expire=3600)
            assert int(filler.stats()[b"evictions"]) > 0
            assert filler.get(b"ev:" + key.encode()) is None
            assert await call(store, mode, "load", key, now) is None
            delta = Change(set={"b": field("b", "2")}, expires_at=now + HOUR)
            assert await call(store, mode, "update", key, delta, now) is False
            assert filler.get(b"ev:" + key.encode()) is None
            filler.close()
        finally:
            await call(store, mode, "close")


@MODES
async def test_a_lost_user_index_takes_the_users_sessions_with_it(
    store: MemcachedStore, raw: Client, mode: str
) -> None:
    key, other, now = new_key(), new_key(), time.time()
    assert await call(store, mode, "insert", key, record(now, user="u", a="1"))
    assert await call(store, mode, "insert", other, record(now, a="1"))
    assert raw.delete(index_name(store.prefix.encode(), "u"))  # as an eviction would
    assert await call(store, mode, "load", key, now) is None
    assert isinstance(await call(store, mode, "load", other, now), Record)
    delta = Change(set={"b": field("b", "2")}, expires_at=now + HOUR)
    assert await call(store, mode, "update", key, delta, now) is False
    assert await call(store, mode, "user_sessions", "u", now) == []
    again = new_key()  # a new login of the user starts a new index
    assert await call(store, mode, "insert", again, record(now, user="u"))
    assert isinstance(await call(store, mode, "load", again, now), Record)
    assert await call(store, mode, "load", key, now) is None


# -- size ------------------------------------------------------------------------------------


@MODES
async def test_a_session_over_the_item_limit_is_refused_and_nothing_is_written(
    store: MemcachedStore, raw: Client, mode: str
) -> None:
    assert store.max_data_bytes is not None
    assert 1_000_000 < store.max_data_bytes < 1024 * 1024
    key, now = new_key(), time.time()
    with pytest.raises(SessionTooLargeError, match="Memcached item"):
        await call(store, mode, "insert", key, record(now, user="u", big="x" * 1_048_400))
    assert raw.get(item_name(store, key)) is None
    assert await call(store, mode, "user_sessions", "u", now) == []


@MODES
async def test_a_save_that_would_outgrow_the_item_limit_changes_nothing(
    store: MemcachedStore, mode: str
) -> None:
    key, now = new_key(), time.time()
    assert await call(store, mode, "insert", key, record(now, a="x" * 600_000))
    grow = Change(set={"b": field("b", "y" * 600_000)}, expires_at=now + HOUR)
    with pytest.raises(SessionTooLargeError):
        await call(store, mode, "update", key, grow, now)
    loaded = await call(store, mode, "load", key, now)
    assert set(loaded.fields) == {"a"}


@MODES
async def test_a_server_with_a_smaller_item_limit_refuses_with_the_same_error(mode: str) -> None:
    with private_memcached("-I", "64k", "-o", "slab_chunk_max=16384") as server:
        store = MemcachedStore(server.url, prefix="small:")
        try:
            key, now = new_key(), time.time()
            with pytest.raises(SessionTooLargeError, match="-I"):
                await call(store, mode, "insert", key, record(now, big="x" * 100_000))
            assert await call(store, mode, "load", key, now) is None
            assert await call(store, mode, "insert", key, record(now, small="x"))
        finally:
            await call(store, mode, "close")


# -- outages ---------------------------------------------------------------------------------


@MODES
async def test_a_server_that_is_not_there_is_a_store_error(mode: str) -> None:
    store = MemcachedStore(f"memcached://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        with pytest.raises(SessionStoreError, match="Memcached session store failed in load"):
            await call(store, mode, "load", new_key(), time.time())
    finally:
        await call(store, mode, "close")


@MODES
async def test_a_frozen_server_is_a_store_error_after_the_timeout_then_recovers(
    mode: str,
) -> None:
    with private_memcached() as server:
        store = MemcachedStore(server.url, prefix="frozen:", timeout=0.5)
        try:
            first, second, now = new_key(), new_key(), time.time()
            assert await call(store, mode, "insert", first, record(now, a="first"))
            assert await call(store, mode, "insert", second, record(now, a="second"))
            server.pause()
            try:
                with pytest.raises(SessionStoreError, match="failed in load"):
                    await call(store, mode, "load", first, now)
            finally:
                server.resume()
            # The reply that came late is never taken for the answer to another read.
            loaded = await call(store, mode, "load", second, now)
            assert dict(loaded.fields) == {"a": field("a", "second")}
        finally:
            await call(store, mode, "close")


@MODES
async def test_a_stopped_server_fails_writes_and_a_restarted_one_serves_again(mode: str) -> None:
    with private_memcached() as server:
        store = MemcachedStore(server.url, prefix="restart:", timeout=0.5)
        try:
            now = time.time()
            server.stop()
            with pytest.raises(SessionStoreError, match="failed in insert"):
                await call(store, mode, "insert", new_key(), record(now, a="1"))
            server.start()
            key = new_key()
            assert await call(store, mode, "insert", key, record(now, a="1"))
            assert isinstance(await call(store, mode, "load", key, now), Record)
        finally:
            await call(store, mode, "close")


# -- construction ------------------------------------------------------------------------------


def test_construction_connects_to_nothing() -> None:
    store = MemcachedStore(f"memcached://127.0.0.1:{free_port()}")
    store.close()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "redis://127.0.0.1:6379"}, ValueError),
        ({"url": "memcached://127.0.0.1:11211/0"}, ValueError),
        ({"url": "memcached://127.0.0.1:11211?prefix=x"}, ValueError),
        ({"url": "memcached://127.0.0.1:99999"}, ValueError),
        ({"prefix": ""}, ValueError),
        ({"prefix": "has space"}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"max_item_bytes": 100}, ValueError),
        ({"client": object()}, TypeError),
        ({"async_client": object()}, TypeError),
    ],
)
def test_bad_configuration_is_refused_at_construction(
    options: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        MemcachedStore(**options)


# -- as the cache in front of a database -------------------------------------------------------


class TestCachedInFrontOfSQLite(StoreConformance):
    """The set-up the docs recommend for durability, held to the whole kit."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CachedStore]:
        require_server("memcached")
        cache = MemcachedStore(MEMCACHED_URL, prefix=unique("swcache") + ":")
        backing = SQLStore(f"sqlite:///{tmp_path / 'sessions.db'}", table=unique("sw_test"))
        store = CachedStore(cache=cache, store=backing)
        yield store
        cache.delete_all()
        backing.drop_table()
        store.close()
