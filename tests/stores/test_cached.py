"""CachedStore on real Redis servers: read-through, write-through, coherence, outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from sessionware._errors import SessionStoreError
from sessionware._expiry import Expiry
from sessionware._keys import new_key
from sessionware._records import Change, Record
from sessionware._serializers import JSONSerializer, Serializer
from sessionware.stores import CachedStore, RedisStore
from sessionware.stores.base import SessionStore
from tests.servers import REDIS_URL, require_server
from tests.stores.factories import unique
from tests.stores.test_redis import CLOSED_URL, MODES, CommandLog, change, record, twin

pytestmark = pytest.mark.redis

NOW = time.time()


class Parts:
    """A cache and a store, each a RedisStore on its own prefix; ``twin()`` builds more
    stores on the same prefixes, as other processes would."""

    def __init__(self) -> None:
        self.cache_prefix = unique("swcache") + ":"
        self.store_prefix = unique("swstore") + ":"
        self.made: list[RedisStore] = []
        self.cache = self.redis(self.cache_prefix)
        self.store = self.redis(self.store_prefix)

    def redis(self, prefix: str, url: str = REDIS_URL, **kwargs: Any) -> RedisStore:
        made = RedisStore(url, prefix=prefix, **kwargs)
        self.made.append(made)
        return made

    def cached(self) -> CachedStore:
        return CachedStore(cache=self.redis(self.cache_prefix), store=self.redis(self.store_prefix))

    def both(self, key: str) -> tuple[Record | None, Record | None]:
        return self.cache.load(key, NOW), self.store.load(key, NOW)


@pytest.fixture
def parts() -> Iterator[Parts]:
    require_server("redis")
    made = Parts()
    yield made
    made.cache.delete_all()
    made.store.delete_all()
    for store in made.made:
        store.close()


class Switchable(SessionStore):
    """A real store that can be switched off: while ``down`` every call raises
    SessionStoreError, as a RedisStore does when its server is unreachable. ``before_create``
    runs once just before the next ``create``, to interleave another request there."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.down = False
        self.calls = 0
        self.before_create: Callable[[], object] | None = None

    @property
    def serializer(self) -> Serializer:
        return self.inner.serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        self.inner.serializer = value

    def _reach(self) -> SessionStore:
        self.calls += 1
        if self.down:
            raise SessionStoreError("switched off")
        return self.inner

    def load(self, key: str, now: float) -> Record | None:
        return self._reach().load(key, now)

    def create(self, key: str, record: Record) -> bool:
        self._interleave()
        return self._reach().create(key, record)

    def update(self, key: str, change: Change, now: float) -> bool:
        return self._reach().update(key, change, now)

    def delete(self, key: str) -> bool:
        return self._reach().delete(key)

    async def aload(self, key: str, now: float) -> Record | None:
        return await self._reach().aload(key, now)

    async def acreate(self, key: str, record: Record) -> bool:
        self._interleave()
        return await self._reach().acreate(key, record)

    def _interleave(self) -> None:
        hook, self.before_create = self.before_create, None
        if hook is not None:
            hook()

    async def aupdate(self, key: str, change: Change, now: float) -> bool:
        return await self._reach().aupdate(key, change, now)

    async def adelete(self, key: str) -> bool:
        return await self._reach().adelete(key)


@MODES
def test_a_miss_reads_the_store_and_fills_the_cache(mode: str, parts: Parts) -> None:
    cached, key = parts.cached(), new_key()
    stored = Record({"user": "ada"}, NOW, NOW + 60, Expiry("age", 60))
    assert parts.store.create(key, stored)
    assert parts.cache.load(key, NOW) is None
    assert twin(mode, cached, "load")(key, NOW) == stored
    assert parts.cache.load(key, NOW) == stored


@MODES
def test_a_hit_is_one_cache_command_and_an_update_one_command_each(mode: str, parts: Parts) -> None:
    cached, key = parts.cached(), new_key()
    cached.create(key, record({"a": 1}))
    cached.update(key, change(set={"warm": 1}), NOW)  # scripts loaded on both
    with CommandLog(parts.store_prefix) as store_log, CommandLog(parts.cache_prefix) as cache_log:
        assert twin(mode, cached, "load")(key, NOW) is not None
    assert (store_log.commands, cache_log.commands) == ([], ["HGETALL"])
    with CommandLog(parts.store_prefix) as store_log, CommandLog(parts.cache_prefix) as cache_log:
        assert twin(mode, cached, "update")(key, change(set={"b": 2}), NOW)
    assert (store_log.commands, cache_log.commands) == (["EVALSHA"], ["EVALSHA"])


@MODES
def test_writes_go_through_and_keep_cache_and_store_equal(mode: str, parts: Parts) -> None:
    cached, key = parts.cached(), new_key()
    assert twin(mode, cached, "create")(key, record({"a": 1, "b": 2}))
    changes = [
        change(set={"c": 3}, deleted=frozenset({"a"})),
        change(expiry_changed=True, expiry=Expiry("at", NOW + 500), expires_at=NOW + 500),
        change(cleared=True, set={"d": 4}),
        change(expiry_changed=True, expiry=None),
    ]
    for delta in changes:
        assert twin(mode, cached, "update")(key, delta, NOW)
        in_cache, in_store = parts.both(key)
        assert in_cache is not None
        assert in_cache == in_store
    assert twin(mode, cached, "load")(key, NOW) == parts.store.load(key, NOW)
    assert twin(mode, cached, "delete")(key)
    assert parts.both(key) == (None, None)
    assert not twin(mode, cached, "delete")(key)


@MODES
def test_an_update_the_store_refuses_drops_the_cached_copy(mode: str, parts: Parts) -> None:
    cached, key = parts.cached(), new_key()
    cached.create(key, record({"user": "ada"}))
    parts.store.delete(key)  # gone from the truth (flushed elsewhere, expired)
    assert not twin(mode, cached, "update")(key, change(set={"late": 1}), NOW)
    assert parts.both(key) == (None, None)
    assert cached.load(key, NOW) is None


@MODES
def test_cached_stores_sharing_cache_and_store_stay_coherent(mode: str, parts: Parts) -> None:
    first, second, key = parts.cached(), parts.cached(), new_key()
    assert twin(mode, first, "create")(key, record({"base": 0}))
    assert twin(mode, second, "load")(key, NOW) is not None  # both now read the cache
    assert twin(mode, first, "update")(key, change(set={"from_first": 1}), NOW)
    assert twin(mode, second, "update")(key, change(set={"from_second": 2}), NOW)
    truth = parts.store.load(key, NOW)
    assert truth is not None
    assert truth.data == {"base": 0, "from_first": 1, "from_second": 2}
    assert twin(mode, first, "load")(key, NOW) == truth
    assert twin(mode, second, "load")(key, NOW) == truth
    assert twin(mode, second, "delete")(key)  # logout through the other one
    assert twin(mode, first, "load")(key, NOW) is None
    assert not twin(mode, first, "update")(key, change(set={"late": 1}), NOW)
    assert parts.both(key) == (None, None)


def test_concurrent_writers_through_two_cached_stores_all_land(parts: Parts) -> None:
    first, second, key = parts.cached(), parts.cached(), new_key()
    first.create(key, record({}))

    async def run() -> None:
        writes = [
            (first if i % 2 else second).aupdate(key, change(set={f"k{i}": i}), NOW)
            for i in range(30)
        ]
        assert all(await asyncio.gather(*writes))

    asyncio.run(run())
    loaded = first.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {f"k{i}": i for i in range(30)}
    assert parts.both(key) == (loaded, loaded)


@MODES
def test_a_cache_that_is_down_degrades_to_the_store_with_one_warning(
    mode: str, parts: Parts, caplog: pytest.LogCaptureFixture
) -> None:
    cache = parts.redis("swtest:", url=CLOSED_URL, timeout=0.2)
    cached, key = CachedStore(cache=cache, store=parts.store), new_key()
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert twin(mode, cached, "create")(key, record({"a": 1}))
        assert twin(mode, cached, "update")(key, change(set={"b": 2}), NOW)
        loaded = twin(mode, cached, "load")(key, NOW)
        # Ending a session is the exception: it fails visibly rather than leave a copy
        # that other processes sharing the cache would serve after the outage.
        with pytest.raises(SessionStoreError, match="cannot end the session"):
            twin(mode, cached, "delete")(key)
        assert parts.store.load(key, NOW) is not None  # nothing half done: still logged in
    assert time.perf_counter() - started < 2.0
    assert loaded is not None
    assert loaded.data == {"a": 1, "b": 2}
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1
    assert "cache" in warned[0].getMessage()


def test_a_cache_that_is_down_is_retried_only_after_a_pause(parts: Parts) -> None:
    cache = Switchable(parts.cache)
    cached, key = CachedStore(cache=cache, store=parts.store), new_key()
    cached.create(key, record({"a": 1}))
    cache.down, cache.calls = True, 0
    for _ in range(5):
        assert cached.load(key, NOW) is not None
    assert cache.calls == 1


@MODES
def test_writes_missed_by_the_cache_are_never_served_stale(mode: str, parts: Parts) -> None:
    cache = Switchable(parts.cache)
    cached = CachedStore(cache=cache, store=parts.store)
    cached.cache_retry_after = 0.0
    changed, deleted = new_key(), new_key()
    for key in (changed, deleted):
        assert cached.create(key, record({"v": 1}))
    cache.down = True  # the cache keeps its old copies but misses these writes
    assert twin(mode, cached, "update")(changed, change(set={"v": 2}), NOW)
    with pytest.raises(SessionStoreError):  # a logout is refused, never half done
        twin(mode, cached, "delete")(deleted)
    cache.down = False
    loaded = twin(mode, cached, "load")(changed, NOW)
    assert loaded is not None
    assert loaded.data == {"v": 2}
    assert parts.both(changed) == (loaded, loaded)
    assert twin(mode, cached, "delete")(deleted)  # retried once the cache is back: final
    assert twin(mode, cached, "load")(deleted, NOW) is None
    assert parts.both(deleted) == (None, None)


@MODES
@pytest.mark.parametrize("other_request", ["delete", "update"])
def test_a_fill_racing_another_write_leaves_no_older_copy(
    mode: str, other_request: str, parts: Parts
) -> None:
    cache = Switchable(parts.cache)
    reader, writer, key = CachedStore(cache=cache, store=parts.store), parts.cached(), new_key()
    assert parts.store.create(key, record({"v": 1}))  # in the store, not (or no longer) cached
    if other_request == "delete":  # a logout lands between the reader's read and its fill
        cache.before_create = lambda: writer.delete(key)
    else:
        cache.before_create = lambda: writer.update(key, change(set={"v": 2}), NOW)
    twin(mode, reader, "load")(key, NOW)
    truth = parts.store.load(key, NOW)
    assert parts.cache.load(key, NOW) in (None, truth)
    assert reader.load(key, NOW) == truth
    assert parts.both(key) == (truth, truth)


@MODES
def test_a_store_that_is_down_raises(mode: str, parts: Parts) -> None:
    store = parts.redis("swtest:", url=CLOSED_URL, timeout=0.2)
    cached, key = CachedStore(cache=parts.cache, store=store), new_key()
    with pytest.raises(SessionStoreError):
        twin(mode, cached, "create")(key, record({"a": 1}))
    with pytest.raises(SessionStoreError):
        twin(mode, cached, "load")(key, NOW)
    with pytest.raises(SessionStoreError):
        twin(mode, cached, "update")(key, change(set={"a": 1}), NOW)


def test_an_unreadable_cached_copy_is_replaced_from_the_store(parts: Parts) -> None:
    cached, key = parts.cached(), new_key()
    cached.create(key, record({"a": 1}))
    raw = redis.Redis.from_url(REDIS_URL)
    raw.hset(parts.cache_prefix + key, "d:a", b"\xff garbage")
    raw.close()
    loaded = cached.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert parts.cache.load(key, NOW) == loaded


def test_the_serializer_is_set_on_both_components(parts: Parts) -> None:
    first, second = JSONSerializer(), JSONSerializer()
    cached = CachedStore(cache=parts.cache, store=parts.store, serializer=first)
    assert parts.cache.serializer is first
    assert parts.store.serializer is first
    cached.serializer = second  # what the middleware does with its serializer option
    assert cached.serializer is second
    assert parts.cache.serializer is second
    assert parts.store.serializer is second


def test_cache_and_store_must_be_two_stores(parts: Parts) -> None:
    with pytest.raises(ValueError, match="two different stores"):
        CachedStore(cache=parts.store, store=parts.store)
