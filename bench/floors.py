"""The floors: the raw client round trips a request cannot avoid, timed in the same run.

A session middleware on a server-side store needs at least one read per request that
carries a cookie, and one read and one write for a request that changes the session.
Each floor is exactly that, done with the bare client the store itself uses, with the
same client settings (timeouts, autocommit, connection options), on a session the store
wrote itself, with no sessionware code in between:

- Redis: ``HGETALL`` of the session hash; and ``HGETALL`` + ``EVALSHA`` of the store's
  own update script with the arguments it would send (redis-py's asyncio client);
- PostgreSQL: ``SELECT`` by primary key, and ``SELECT`` + ``UPDATE`` (psycopg's async
  connection, autocommit);
- MariaDB: the same with each async driver measured (asyncmy and aiomysql);
- SQLite: the same with ``sqlite3`` in WAL mode, on the event loop's thread;
- Memcached: ``get``; and ``get`` + ``gets`` + ``cas`` of the item, as an update sends
  them (emcache, the store's async client).

``sessionware's overhead beyond the floor`` is then the app's overhead over the bare app
minus the floor of what its route has to do (see ``targets``).
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import emcache
import redis
import redis.asyncio
from redis.backoff import NoBackoff

from sessionware._keys import new_key
from sessionware._records import Change, Record, pack_fields
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import MemcachedStore, RedisStore, SQLStore
from sessionware.stores._memcached_layout import session_name
from sessionware.stores._redis_flows import Eval, Flows

from .apps import PROFILE
from .config import MEMCACHED_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL, Run

HOUR = 3600.0
TIMEOUT = 5.0  # the stores' default timeout, so the same client settings
CODEC = FieldCodec(JSONSerializer())

# floor name -> what it stands for in the report
FLOORS: dict[str, str] = {
    "redis-read": "Redis `HGETALL`",
    "redis-write": "Redis `HGETALL` + `EVALSHA`",
    "postgres-read": "PostgreSQL `SELECT` (psycopg async)",
    "postgres-write": "PostgreSQL `SELECT` + `UPDATE` (psycopg async)",
    "mysql-read": "MariaDB `SELECT` (asyncmy)",
    "mysql-write": "MariaDB `SELECT` + `UPDATE` (asyncmy)",
    "mysql-aiomysql-read": "MariaDB `SELECT` (aiomysql)",
    "sqlite-read": "SQLite `SELECT` (sqlite3, WAL)",
    "sqlite-write": "SQLite `SELECT` + `UPDATE` (sqlite3, WAL)",
    "memcached-read": "Memcached `get` (emcache)",
    "memcached-write": "Memcached `get` + `gets` + `cas` (emcache)",
}

_COLUMNS = "kind, target, data, created_at, expires_at, expiry, key_at, updated_at, user_id"

Op = Callable[[], Awaitable[object]]


def _record() -> Record:
    now = time.time()
    return Record(CODEC.encode_all(PROFILE), now, now + HOUR, key_at=now, updated_at=now)


class Floors:
    """Opens the raw clients and the sessions they read; ``ops[name]`` does one floor."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.ops: dict[str, Op] = {}
        self.skipped: dict[str, str] = {}
        self._closers: list[Callable[[], Awaitable[object]]] = []
        self._stores: list[SQLStore | RedisStore | MemcachedStore] = []

    async def open(self) -> None:
        for name, opener in (
            ("redis", self._redis),
            ("postgres", self._postgres),
            ("mysql", self._mysql_asyncmy),
            ("mysql-aiomysql", self._mysql_aiomysql),
            ("sqlite", self._sqlite),
            ("memcached", self._memcached),
        ):
            try:
                await opener()
            except Exception as exc:  # a server or driver missing here: reported, not fatal
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                for cell in (f"{name}-read", f"{name}-write"):
                    self.skipped[cell] = reason

    async def close(self) -> None:
        for close in self._closers:
            await close()
        for store in self._stores:
            if isinstance(store, SQLStore):
                store.drop_table()
            else:
                store.delete_all()
            store.close()

    async def time(self, name: str, n: int) -> float:
        """µs per floor operation over ``n`` of them."""
        op = self.ops[name]
        start = time.perf_counter_ns()
        for _ in range(n):
            await op()
        return (time.perf_counter_ns() - start) / n / 1000

    # -- the clients --------------------------------------------------------------------

    async def _redis(self) -> None:
        prefix = self.run.redis_prefix("floor")
        store = RedisStore(REDIS_URL, prefix=prefix, timeout=TIMEOUT)
        self._stores.append(store)
        key = new_key()
        assert store.insert(key, _record())
        retry = redis.asyncio.retry.Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
        client = redis.asyncio.Redis.from_url(
            REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT, retry=retry
        )
        self._closers.append(client.aclose)
        # The very call the store makes for a one-key save, built once.
        now = time.time()
        change = Change(set={"n": CODEC.encode("n", 1)}, expires_at=now + HOUR)
        step = next(Flows(prefix.encode(), per_slot=False).update(key, change, now))
        assert isinstance(step, Eval)
        sync = redis.Redis.from_url(REDIS_URL)
        sync.script_load(step.script.source)
        sync.close()
        name = step.keys[0]
        sha, keys, args = step.script.sha, step.keys, step.args

        async def read() -> object:
            return await client.hgetall(name)

        async def write() -> object:
            await client.hgetall(name)
            return await client.evalsha(sha, len(keys), *keys, *args)

        await write()
        self.ops["redis-read"], self.ops["redis-write"] = read, write

    async def _memcached(self) -> None:
        store = MemcachedStore(MEMCACHED_URL, prefix=self.run.redis_prefix("floor"))
        self._stores.append(store)
        key = new_key()
        assert store.insert(key, _record())
        host, port = MEMCACHED_URL.removeprefix("memcached://").rsplit(":", 1)
        client = await emcache.create_client(
            [emcache.MemcachedHostAddress(host, int(port))],
            timeout=TIMEOUT,
            connection_timeout=TIMEOUT,
        )

        async def close() -> None:
            await client.close()

        self._closers.append(close)
        name = session_name(store.prefix.encode(), key)

        async def read() -> object:
            return await client.get(name)

        async def write() -> object:
            # What an update sends: the load's get, then gets and cas of the new value.
            await client.get(name)
            item = await client.gets(name)
            assert item is not None
            assert item.cas is not None
            await client.cas(name, item.value, item.cas, exptime=3600)
            return item

        await write()
        self.ops["memcached-read"], self.ops["memcached-write"] = read, write

    def _sql_store(self, url: str, name: str) -> tuple[str, str]:
        """A table the store made, holding one session: (table, key)."""
        store = SQLStore(url, table=self.run.sql_table(name))
        self._stores.append(store)
        key = new_key()
        assert store.insert(key, _record())
        return store.table.name, key

    async def _postgres(self) -> None:
        import psycopg

        table, key = self._sql_store(POSTGRES_URL, "floor_pg")
        conn = await psycopg.AsyncConnection.connect(
            POSTGRES_URL,
            autocommit=True,
            connect_timeout=int(TIMEOUT),
            options=f"-c statement_timeout={int(TIMEOUT * 1000)}",
        )
        await conn.execute("SET synchronous_commit TO off")
        self._closers.append(conn.close)
        select, update = _statements(table, "%s")
        blob = pack_fields(_record().fields)

        async def read() -> object:
            cursor = await conn.execute(select, (key, time.time()))
            return await cursor.fetchone()

        async def write() -> object:
            await read()
            now = time.time()
            return await conn.execute(update, (blob, now + HOUR, now, key))

        self.ops["postgres-read"], self.ops["postgres-write"] = read, write

    async def _mysql_asyncmy(self) -> None:
        asyncmy = importlib.import_module("asyncmy")
        table, key = self._sql_store(MYSQL_URL, "floor_my")
        conn = await asyncmy.connect(
            host="127.0.0.1", port=3306, user="root", database="test", **_mysql_options()
        )
        self._closers.append(_closer(conn.close))
        self._mysql_ops("mysql", conn, table, key)

    async def _mysql_aiomysql(self) -> None:
        aiomysql = importlib.import_module("aiomysql")
        table, key = self._sql_store(MYSQL_URL, "floor_my2")
        conn = await aiomysql.connect(
            host="127.0.0.1", port=3306, user="root", db="test", **_mysql_options()
        )
        self._closers.append(_closer(conn.close))
        self._mysql_ops("mysql-aiomysql", conn, table, key)
        # aiomysql 0.3 cannot send bytes parameters with PyMySQL 1.2 (its escaping
        # helper changed), so SQLStore cannot use it: its read is kept for comparison.
        del self.ops["mysql-aiomysql-write"]
        self.skipped["mysql-aiomysql-write"] = "aiomysql cannot send bytes parameters"

    def _mysql_ops(self, prefix: str, conn: Any, table: str, key: str) -> None:
        select, update = _statements(table, "%s")
        blob = pack_fields(_record().fields)

        async def read() -> object:
            async with conn.cursor() as cursor:
                await cursor.execute(select, (key, time.time()))
                return await cursor.fetchone()

        async def write() -> object:
            await read()
            now = time.time()
            async with conn.cursor() as cursor:
                return await cursor.execute(update, (blob, now + HOUR, now, key))

        self.ops[f"{prefix}-read"], self.ops[f"{prefix}-write"] = read, write

    async def _sqlite(self) -> None:
        path = self.run.path("floor.db")
        table, key = self._sql_store(f"sqlite:///{path}", "floor_lite")
        conn = sqlite3.connect(path, timeout=TIMEOUT, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        self._closers.append(_closer(conn.close))
        select, update = _statements(table, "?")
        blob = pack_fields(_record().fields)

        async def read() -> object:
            return conn.execute(select, (key, time.time())).fetchone()

        async def write() -> object:
            await read()
            now = time.time()
            return conn.execute(update, (blob, now + HOUR, now, key))

        self.ops["sqlite-read"], self.ops["sqlite-write"] = read, write


def _statements(table: str, mark: str) -> tuple[str, str]:
    """The store's load (by primary key, live only) and a write of the data, by hand."""
    select = f"SELECT {_COLUMNS} FROM {table} WHERE session_key = {mark} AND expires_at > {mark}"
    update = (
        f"UPDATE {table} SET data = {mark}, expires_at = {mark}, updated_at = {mark} "
        f"WHERE session_key = {mark}"
    )
    return select, update


def _mysql_options() -> dict[str, Any]:
    """What ``SQLStore`` sets on its MariaDB connections (see ``_sql_engine``)."""
    return {
        "autocommit": True,
        "connect_timeout": TIMEOUT,
        "init_command": f"SET SESSION innodb_lock_wait_timeout = {int(TIMEOUT)}",
    }


def _closer(close: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """An async closer for a client whose ``close`` may or may not be a coroutine."""

    async def closing() -> object:
        result = close()
        if hasattr(result, "__await__"):
            return await result
        return result

    return closing
