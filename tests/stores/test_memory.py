"""MemoryStore specifics: LRU bound, expiry eviction, data isolation, no thread hops."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import tracemalloc
from typing import Any

import pytest

from sessionware._keys import new_key
from sessionware._records import Change, Record
from sessionware._serializers import JSONSerializer
from sessionware.stores import MemoryStore

NOW = time.time()
HOUR = 3600.0


def record(data: dict[str, Any], expires_in: float = HOUR) -> Record:
    return Record(data, created_at=NOW, expires_at=NOW + expires_in)


def present(store: MemoryStore, keys: list[str]) -> list[str]:
    return [key for key in keys if store.load(key, NOW) is not None]


# -- construction ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10", True])
def test_max_entries_must_be_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryStore(max_entries=bad)


def test_max_entries_accepts_none_and_positive_ints() -> None:
    assert MemoryStore().max_entries is None
    assert MemoryStore(max_entries=1).max_entries == 1


# -- LRU bound -------------------------------------------------------------------------


def test_least_recently_used_goes_first_counting_loads_and_writes() -> None:
    store = MemoryStore(max_entries=3)
    a, b, c, d, e = (new_key() for _ in range(5))
    for key in (a, b, c):
        assert store.create(key, record({"k": key}))
    assert store.load(a, NOW) is not None  # order now b, c, a
    assert store.create(d, record({}))  # evicts b
    assert store.load(b, NOW) is None
    assert store.update(c, Change(set={"x": 1}, expires_at=NOW + HOUR), NOW)  # a, d, c
    assert store.create(e, record({}))  # evicts a
    assert present(store, [a, b, c, d, e]) == [c, d, e]


def test_max_entries_bounds_the_table_and_keeps_the_newest() -> None:
    store = MemoryStore(max_entries=50)
    keys = [new_key() for _ in range(500)]
    for key in keys:
        store.create(key, record({"k": key}))
    assert present(store, keys) == keys[-50:]


def test_memory_stays_flat_under_max_entries() -> None:
    store = MemoryStore(max_entries=1_000)

    def fill(count: int) -> None:
        for i in range(count):
            store.create(new_key(), record({"user": i, "cart": [1, 2, 3]}))

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


def test_expired_entry_is_evicted_when_loaded() -> None:
    store = MemoryStore()
    key = new_key()
    store.create(key, record({"a": 1}, expires_in=10))
    assert store.load(key, NOW + 11) is None
    # Gone, not hidden: even a load with an earlier clock finds nothing.
    assert store.load(key, NOW) is None
    assert store.clear_expired(NOW + 11) == 0


def test_expired_entry_is_evicted_when_updated() -> None:
    store = MemoryStore()
    key = new_key()
    store.create(key, record({"a": 1}, expires_in=10))
    assert not store.update(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW + 11)
    assert store.load(key, NOW) is None


def test_clear_expired_counts_and_keeps_live_entries() -> None:
    store = MemoryStore()
    live = [new_key() for _ in range(3)]
    dead = [new_key() for _ in range(5)]
    for key in live:
        store.create(key, record({}, expires_in=HOUR))
    for key in dead:
        store.create(key, record({}, expires_in=60))
    assert store.clear_expired(NOW + 61) == 5
    assert present(store, live + dead) == live
    assert store.clear_expired(NOW + 61) == 0


def test_new_sessions_sweep_expired_ones_at_the_cold_end() -> None:
    store = MemoryStore()
    stale = new_key()
    store.create(stale, Record({}, created_at=0.0, expires_at=time.time() - 1))
    store.create(new_key(), record({}))
    assert store.load(stale, 0.0) is None  # evicted, not merely hidden


# -- isolation -----------------------------------------------------------------------------

SERIALIZERS = [pytest.param(None, id="objects"), pytest.param(JSONSerializer(), id="json")]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_in_place_mutation_of_loaded_data_does_not_leak(serializer: JSONSerializer | None) -> None:
    store = MemoryStore(serializer=serializer)
    key = new_key()
    store.create(key, record({"cart": [1], "prefs": {"theme": "dark"}}))
    first = store.load(key, NOW)
    assert first is not None
    first.data["cart"].append(2)
    first.data["prefs"]["theme"] = "light"
    first.data["added"] = True
    second = store.load(key, NOW)
    assert second is not None
    assert second.data == {"cart": [1], "prefs": {"theme": "dark"}}
    assert second.data["cart"] is not first.data["cart"]


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_objects_written_stay_with_the_writer(serializer: JSONSerializer | None) -> None:
    store = MemoryStore(serializer=serializer)
    key = new_key()
    created: dict[str, Any] = {"cart": [1]}
    store.create(key, record(created))
    created["cart"].append("late")
    items = ["a"]
    store.update(key, Change(set={"items": items}, expires_at=NOW + HOUR), NOW)
    items.append("late")
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"cart": [1], "items": ["a"]}
    assert loaded.data["items"] is not items


def test_objects_are_kept_as_they_are_without_a_serializer() -> None:
    store = MemoryStore()
    key = new_key()
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    tags = {"x", "y"}
    store.create(key, record({"when": when, "tags": tags, "pair": (1, [2])}))
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"when": when, "tags": tags, "pair": (1, [2])}
    assert loaded.data["tags"] is not tags


def test_self_referencing_data_is_copied() -> None:
    store = MemoryStore()
    key = new_key()
    loop: list[Any] = [1]
    loop.append(loop)
    store.create(key, record({"loop": loop}))
    loaded = store.load(key, NOW)
    assert loaded is not None
    copied = loaded.data["loop"]
    assert copied is not loop
    assert copied[1] is copied


class ThreadRecordingSerializer:
    """JSON that notes which thread ran it, to see where the async twins do their work."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def dumps(self, data: dict[str, Any]) -> bytes:
        self.threads.add(threading.get_ident())
        return json.dumps(data).encode()

    def loads(self, raw: bytes) -> dict[str, Any]:
        self.threads.add(threading.get_ident())
        value: dict[str, Any] = json.loads(raw)
        return value


@pytest.mark.anyio
async def test_async_twins_never_hop_to_a_thread() -> None:
    serializer = ThreadRecordingSerializer()
    store = MemoryStore(serializer=serializer)
    key = new_key()
    assert await store.acreate(key, record({"a": 1}))
    assert await store.aupdate(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW)
    loaded = await store.aload(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1, "b": 2}
    assert serializer.threads == {threading.get_ident()}
    assert await store.aclear_expired(NOW) == 0
    await store.aclose()
    assert await store.adelete(key)  # still usable after close
    assert not await store.adelete(key)
