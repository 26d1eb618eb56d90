"""MemoryStore specifics: the LRU bound, expiry eviction, owned data, no thread hops."""

from __future__ import annotations

import threading
import time
import tracemalloc
from typing import Any

import pytest

from sessionware._keys import new_key
from sessionware.stores import MemoryStore
from sessionware.stores.base import Change, Record, Stale

NOW = time.time()
HOUR = 3600.0


def record(fields: dict[str, bytes] | None = None, expires_in: float = HOUR) -> Record:
    return Record(dict(fields or {}), created_at=NOW, expires_at=NOW + expires_in)


def present(store: MemoryStore, keys: list[str]) -> list[str]:
    return [key for key in keys if store.load(key, NOW) is not None]


# -- construction ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1])
def test_max_entries_must_be_positive(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=bad)


@pytest.mark.parametrize("bad", [2.5, "10", True])
def test_max_entries_must_be_an_int(bad: Any) -> None:
    with pytest.raises(TypeError, match="max_entries"):
        MemoryStore(max_entries=bad)


def test_max_entries_accepts_none_and_positive_ints() -> None:
    assert MemoryStore().max_entries is None
    assert MemoryStore(max_entries=1).max_entries == 1


# -- LRU bound -------------------------------------------------------------------------


def test_least_recently_used_goes_first_counting_loads_and_writes() -> None:
    store = MemoryStore(max_entries=3)
    a, b, c, d, e = (new_key() for _ in range(5))
    for key in (a, b, c):
        assert store.insert(key, record())
    assert store.load(a, NOW) is not None  # order now b, c, a
    assert store.insert(d, record())  # evicts b
    assert store.load(b, NOW) is None
    assert store.update(c, Change(set={"x": b"1"}, expires_at=NOW + HOUR), NOW)  # a, d, c
    assert store.insert(e, record())  # evicts a
    assert present(store, [a, b, c, d, e]) == [c, d, e]


def test_max_entries_bounds_the_table_and_keeps_the_newest() -> None:
    store = MemoryStore(max_entries=50)
    keys = [new_key() for _ in range(500)]
    for key in keys:
        store.insert(key, record({"k": key.encode()}))
    assert present(store, keys) == keys[-50:]


def test_an_evicted_session_leaves_the_user_index() -> None:
    store = MemoryStore(max_entries=1)
    first, second = new_key(), new_key()
    store.insert(first, Record({}, NOW, NOW + HOUR, user="u"))
    store.insert(second, Record({}, NOW, NOW + HOUR, user="v"))
    assert store.user_sessions("u", NOW) == []


def test_memory_stays_flat_under_max_entries() -> None:
    store = MemoryStore(max_entries=1_000)

    def fill(count: int) -> None:
        for i in range(count):
            store.insert(new_key(), record({"user": str(i).encode(), "cart": b"[1,2,3]"}))

    tracemalloc.start()
    try:
        fill(2_000)
        full = tracemalloc.get_traced_memory()[0]
        fill(20_000)
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert later < full * 1.1


# -- expiry --------------------------------------------------------------------------------


def test_an_expired_entry_is_evicted_when_loaded() -> None:
    store = MemoryStore()
    key = new_key()
    store.insert(key, record({"a": b"1"}, expires_in=10))
    assert store.load(key, NOW + 11) is None
    # Gone, not hidden: even a load with an earlier clock finds nothing.
    assert store.load(key, NOW) is None
    assert store.clear_expired(NOW + 11) == 0


def test_a_stale_marker_expires_by_itself() -> None:
    store = MemoryStore()
    key = new_key()
    store.insert(key, record())
    assert store.delete(key, NOW, NOW + 5)
    assert isinstance(store.load(key, NOW), Stale)
    assert store.load(key, NOW + 6) is None
    assert store.clear_expired(NOW + 6) == 0


def test_new_sessions_sweep_expired_ones_at_the_cold_end() -> None:
    store = MemoryStore()
    gone = new_key()
    store.insert(gone, Record({}, created_at=0.0, expires_at=time.time() - 1))
    store.insert(new_key(), record())
    assert store.load(gone, 0.0) is None  # evicted, not merely hidden


# -- owned data ------------------------------------------------------------------------------


def test_the_store_keeps_its_own_copy_of_the_fields() -> None:
    store = MemoryStore()
    key = new_key()
    fields = {"a": b"1"}
    store.insert(key, Record(fields, NOW, NOW + HOUR))
    fields["b"] = b"2"  # the caller keeps using its dict
    loaded = store.load(key, NOW)
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == {"a": b"1"}


# -- async twins -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_twins_never_hop_to_a_thread() -> None:
    threads: set[int] = set()

    class Watching(MemoryStore):
        def load(self, key: str, now: float) -> Any:
            threads.add(threading.get_ident())
            return super().load(key, now)

    store = Watching()
    key = new_key()
    assert await store.ainsert(key, record({"a": b"1"}))
    assert await store.aupdate(key, Change(set={"b": b"2"}, expires_at=NOW + HOUR), NOW)
    loaded = await store.aload(key, NOW)
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == {"a": b"1", "b": b"2"}
    assert threads == {threading.get_ident()}
    assert await store.aclear_expired(NOW) == 0
    await store.aclose()
    assert await store.adelete(key, NOW, NOW) is True  # still usable after close
    assert await store.adelete(key, NOW, NOW) is False
