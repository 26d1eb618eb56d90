"""What the CachedStore tests build: a deployment of one cache and one store, workers on
it (each a CachedStore as another process would build it), and a real store wrapper that
lets another request in at a chosen moment."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

from sessionware._errors import SessionStoreError
from sessionware._keys import new_key
from sessionware.stores import CachedStore, FileStore, RedisStore, SQLStore
from sessionware.stores._cached_entries import read_entry
from sessionware.stores.base import (
    DEFAULT_STALE_WINDOW,
    Change,
    Finding,
    Loaded,
    Progress,
    Record,
    SessionInfo,
    SessionStore,
    Written,
)
from tests.servers import POSTGRES_URL, REDIS_URL, require_server
from tests.stores.factories import unique

T = TypeVar("T")

#: The kinds of store (the truth) every CachedStore test runs on.
BACKINGS = ["file", "postgres"]

#: Timings that keep revocations (which wait ``seal_for``) quick in tests.
FAST = {"fill_deadline": 0.1, "seal_for": 0.2}


@contextmanager
def backing(kind: str, tmp_path: Path) -> Iterator[Callable[[], SessionStore]]:
    """A factory of handles on one store location of ``kind`` (each handle as another
    process would open it); what it created is dropped on exit."""
    opened: list[SessionStore] = []
    table = unique("sw_cached")
    if kind == "postgres":
        require_server("postgres")

    def open_one() -> SessionStore:
        store: SessionStore
        if kind == "file":
            store = FileStore(tmp_path / "sessions")
        elif kind == "sqlite":
            store = SQLStore(f"sqlite:///{tmp_path / 'sessions.db'}", table=table)
        elif kind == "postgres":
            store = SQLStore(POSTGRES_URL, table=table)
        else:  # pragma: no cover - a typo in BACKINGS
            raise ValueError(kind)
        opened.append(store)
        return store

    try:
        yield open_one
    finally:
        for store in opened:
            if isinstance(store, SQLStore):
                store.drop_table()
                break
        for store in opened:
            store.close()


class Site:
    """One cache (a Redis server, under a prefix of this test) and one store location.

    ``worker()`` is a CachedStore with its own connections and its own state, as each
    process of a deployment has; ``cache`` and ``store`` look behind their backs."""

    def __init__(
        self,
        open_store: Callable[[], SessionStore],
        cache_url: str = REDIS_URL,
        cache_timeout: float = 5.0,
    ) -> None:
        if cache_url == REDIS_URL:
            require_server("redis")
        self.open_store = open_store
        self.cache_url = cache_url
        self.cache_timeout = cache_timeout
        self.prefix = unique("swcache") + ":"
        self.opened: list[SessionStore] = []
        self.cache = self.open_cache()
        self.store = open_store()

    def open_cache(self) -> RedisStore:
        cache = RedisStore(self.cache_url, prefix=self.prefix, timeout=self.cache_timeout)
        self.opened.append(cache)
        return cache

    def worker(self, cache_ttl: float = 30.0, **timings: float) -> CachedStore:
        store = self.open_store()
        # Connect now: a first connection (PostgreSQL on a busy machine) can make a test's
        # first load miss ``fill_deadline``, which rightly skips the fill it expects.
        store.load(new_key(), time.time())
        worker = CachedStore(cache=self.open_cache(), store=store, cache_ttl=cache_ttl)
        for name, value in (FAST | timings).items():
            setattr(worker, name, value)
        return worker

    def close(self) -> None:
        with suppress(SessionStoreError):  # a stopped private server has nothing to clean
            self.cache.delete_all()
        for store in self.opened:
            store.close()


class Hooked(SessionStore):
    """A real store that runs ``after[name]`` once, after its ``name`` operation did its
    work and before it answers: another request gets in at exactly that moment."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.after: dict[str, Callable[[], object]] = {}
        self.max_data_bytes = inner.max_data_bytes

    def _then(self, name: str, result: T) -> T:
        hook = self.after.pop(name, None)
        if hook is not None:
            hook()
        return result

    def load(self, key: str, now: float) -> Loaded:
        return self._then("load", self.inner.load(key, now))

    def insert(self, key: str, record: Record) -> bool:
        return self._then("insert", self.inner.insert(key, record))

    def update(self, key: str, change: Change, now: float) -> Written:
        return self._then("update", self.inner.update(key, change, now))

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        return self._then("delete", self.inner.delete(key, now, stale_until))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return self._then("rotate", self.inner.rotate(key, new_key, record, now, stale_until))

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return self._then("renew", self.inner.renew(key, new_key, now, grace_until))

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        return self._then("clear_expired", self.inner.clear_expired(now, progress))

    def count_expired(self, now: float | None = None) -> int:
        return self.inner.count_expired(now)

    def check(self) -> list[Finding]:
        return self.inner.check()

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        return self.inner.user_sessions(user_id, now)

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        done = self.inner.revoke_session(user_id, session_id, now, stale_for)
        return self._then("revoke_session", done)

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return self._then(
            "revoke_user", self.inner.revoke_user(user_id, except_key, now, stale_for)
        )

    def close(self) -> None:
        self.inner.close()


def load_until_cached(site: Site, load: Callable[[], Loaded], key: str, now: float) -> Loaded:
    """``load()`` until the cache holds a copy of ``key``; what the filling load gave. A
    load fills only if its store read came back within ``fill_deadline``, which a busy
    machine can miss: a test that needs a copy asks again rather than fail on a stall."""
    for _ in range(_FILL_TRIES):
        loaded = load()
        if isinstance(read_entry(site.cache.load(key, now)), Record):
            return loaded
    raise AssertionError(f"no load filled the cache in {_FILL_TRIES} tries")


_FILL_TRIES = 20
