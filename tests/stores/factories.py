"""One factory per store kind, each on its own table / key prefix, cleaned up afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sessionware.stores.base import SessionStore
from tests.servers import MEMCACHED_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL, require_server

SERVER_KINDS = {
    "redis": "redis",
    "postgres": "postgres",
    "mysql": "mysql",
    "cached": "redis",
    "memcached": "memcached",
}
ALL_KINDS = ["memory", "file", "sqlite", "postgres", "mysql", "redis", "cached", "memcached"]


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _nothing() -> None:
    return None


@contextmanager
def make_store(kind: str, tmp_path: Path) -> Iterator[SessionStore]:
    """Build a fresh, empty store of ``kind``; drop what it created on exit."""
    if kind in SERVER_KINDS:
        require_server(SERVER_KINDS[kind])
    from sessionware import stores

    store: SessionStore
    cleanup: Callable[[], None] = _nothing
    if kind == "memory":
        store = stores.MemoryStore()
    elif kind == "file":
        store = stores.FileStore(tmp_path / "sessions")
    elif kind in ("sqlite", "postgres", "mysql"):
        url = {
            "sqlite": f"sqlite:///{tmp_path / 'sessions.db'}",
            "postgres": POSTGRES_URL,
            "mysql": MYSQL_URL,
        }[kind]
        sql = stores.SQLStore(url, table=unique("sw_test"))
        store, cleanup = sql, sql.drop_table
    elif kind == "redis":
        redis_store = stores.RedisStore(REDIS_URL, prefix=unique("swtest") + ":")
        store = redis_store

        def cleanup() -> None:
            redis_store.delete_all()

    elif kind == "cached":
        cache = stores.RedisStore(REDIS_URL, prefix=unique("swcache") + ":")
        backing = stores.SQLStore(f"sqlite:///{tmp_path / 'backing.db'}", table=unique("sw_test"))
        store = stores.CachedStore(cache=cache, store=backing)

        def cleanup() -> None:
            cache.delete_all()
            backing.drop_table()

    elif kind == "memcached":
        memcached = stores.MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":")
        store = memcached

        def cleanup() -> None:
            memcached.delete_all()

    else:  # pragma: no cover - a typo in a parametrize list
        raise ValueError(kind)
    try:
        yield store
    finally:
        cleanup()
        store.close()
