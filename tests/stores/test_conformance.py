"""One conformance suite for every server-side store, sync and async (API.md §5, §6)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from sessionware._expiry import Expiry
from sessionware._keys import new_key
from sessionware._records import Change, Record
from tests.stores.conftest import Driver
from tests.stores.factories import SERIALIZING_KINDS, make_store

pytestmark = pytest.mark.anyio

NOW = time.time()
HOUR = 3600.0


def record(data: dict[str, Any], expires_in: float = HOUR, expiry: Expiry | None = None) -> Record:
    return Record(data, created_at=NOW, expires_at=NOW + expires_in, expiry=expiry)


def change(**kwargs: Any) -> Change:
    kwargs.setdefault("expires_at", NOW + HOUR)
    return Change(**kwargs)


async def test_load_of_unknown_key_is_none(driver: Driver) -> None:
    assert await driver.load(new_key(), NOW) is None


async def test_create_then_load_round_trips_data_and_timing(driver: Driver) -> None:
    key = new_key()
    data = {"user": "ada", "n": 3, "nested": {"list": [1, 2.5, None, True]}, "uni": "zażółć ✓"}
    assert await driver.create(key, record(data, expiry=Expiry("age", 0)))
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == data
    assert loaded.created_at == pytest.approx(NOW, abs=1e-3)
    assert loaded.expires_at == pytest.approx(NOW + HOUR, abs=1e-3)
    assert loaded.expiry == Expiry("age", 0)


async def test_absolute_expiry_round_trips(driver: Driver) -> None:
    key = new_key()
    assert await driver.create(key, record({}, expiry=Expiry("at", NOW + 500)))
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.expiry is not None
    assert loaded.expiry.kind == "at"
    assert loaded.expiry.value == pytest.approx(NOW + 500, abs=1e-3)


async def test_create_refuses_a_live_key_and_keeps_the_original(driver: Driver) -> None:
    key = new_key()
    assert await driver.create(key, record({"a": 1}))
    assert not await driver.create(key, record({"a": 2}))
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1}


async def test_create_may_reuse_the_key_of_an_expired_record(driver: Driver) -> None:
    key = new_key()
    assert await driver.create(key, record({"old": 1}, expires_in=-10))
    assert await driver.create(key, record({"new": 1}))
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"new": 1}


async def test_update_of_unknown_key_writes_nothing(driver: Driver) -> None:
    key = new_key()
    assert not await driver.update(key, change(set={"x": 1}), NOW)
    assert await driver.load(key, NOW) is None


async def test_update_applies_only_the_delta(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"keep": 1, "gone": 2, "change": 3}))
    assert await driver.update(
        key, change(set={"change": 30, "new": 4}, deleted=frozenset({"gone"})), NOW
    )
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"keep": 1, "change": 30, "new": 4}


async def test_stale_writers_of_different_keys_both_survive(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"base": 0}))
    # Both requests loaded {"base": 0}; each saves only what it set.
    assert await driver.update(key, change(set={"from_a": 1}), NOW)
    assert await driver.update(key, change(set={"from_b": 2}), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"base": 0, "from_a": 1, "from_b": 2}


async def test_clear_then_set_replaces_all_data(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"a": 1, "b": 2}))
    assert await driver.update(key, change(cleared=True, set={"c": 3}), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"c": 3}


async def test_update_moves_expiry_and_keeps_created_at(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"a": 1}, expires_in=60))
    later = NOW + 30
    assert await driver.update(key, change(expires_at=later + HOUR), later)
    loaded = await driver.load(key, NOW + 120)  # past the first expiry, within the new one
    assert loaded is not None
    assert loaded.created_at == pytest.approx(NOW, abs=1e-3)
    assert loaded.expires_at == pytest.approx(later + HOUR, abs=1e-3)


async def test_update_sets_and_clears_custom_expiry(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({}))
    await driver.update(key, change(expiry_changed=True, expiry=Expiry("age", 300)), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.expiry == Expiry("age", 300)
    await driver.update(key, change(set={"x": 1}), NOW)  # expiry untouched
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.expiry == Expiry("age", 300)
    await driver.update(key, change(expiry_changed=True, expiry=None), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.expiry is None


async def test_expired_record_is_not_loaded_nor_updated(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"a": 1}, expires_in=10))
    assert await driver.load(key, NOW + 11) is None
    assert not await driver.update(key, change(set={"b": 2}, expires_at=NOW + HOUR), NOW + 11)


async def test_delete_reports_whether_a_record_was_there(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"a": 1}))
    assert await driver.delete(key)
    assert await driver.load(key, NOW) is None
    assert not await driver.delete(key)


async def test_update_after_delete_never_resurrects(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({"user": "ada"}))
    await driver.delete(key)  # logout by another request
    assert not await driver.update(key, change(set={"late": 1}), NOW)
    assert await driver.load(key, NOW) is None


async def test_clear_expired_removes_only_expired_records(driver: Driver) -> None:
    live = [new_key() for _ in range(3)]
    dead = [new_key() for _ in range(4)]
    for key in live:
        await driver.create(key, record({"live": True}))
    for key in dead:
        await driver.create(key, record({"live": False}, expires_in=-5))
    removed = await driver.clear_expired(NOW)
    # Stores that expire records by themselves (Redis TTL) may have removed them already.
    assert removed in (0, len(dead))
    for key in live:
        assert await driver.load(key, NOW) is not None
    for key in dead:
        assert await driver.load(key, NOW) is None
    assert await driver.clear_expired(NOW) == 0


async def test_large_value_round_trips(driver: Driver) -> None:
    key = new_key()
    big = "x" * 1_000_000
    await driver.create(key, record({"big": big}))
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data["big"] == big


async def test_keys_with_awkward_names_round_trip(driver: Driver) -> None:
    key = new_key()
    names = {"": 1, "a:b": 2, "__meta__": 3, "ключ": 4, "with space": 5, "m": 6, "c": 7}
    await driver.create(key, record(names))
    await driver.update(key, change(set={"d:x": 8}, deleted=frozenset({"a:b"})), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {**{k: v for k, v in names.items() if k != "a:b"}, "d:x": 8}


async def test_concurrent_updates_of_distinct_keys_all_land(driver: Driver) -> None:
    key = new_key()
    await driver.create(key, record({}))
    count = 24
    if driver.mode == "sync":
        errors: list[BaseException] = []

        def write(i: int) -> None:
            try:
                assert driver.store.update(key, change(set={f"k{i}": i}), NOW)
            except BaseException as exc:  # collected and re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
    else:
        async with anyio.create_task_group() as group:
            for i in range(count):
                group.start_soon(driver.update, key, change(set={f"k{i}": i}), NOW)
    loaded = await driver.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {f"k{i}": i for i in range(count)}


class RecordingSerializer:
    """JSON with a call log, to prove the configured serializer is the one used."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def dumps(self, data: dict[str, Any]) -> bytes:
        import json

        self.calls.append("dumps")
        return json.dumps(data).encode()

    def loads(self, raw: bytes) -> dict[str, Any]:
        import json

        self.calls.append("loads")
        value: dict[str, Any] = json.loads(raw)
        return value


@pytest.mark.parametrize("kind", SERIALIZING_KINDS)
async def test_custom_serializer_is_used(kind: str, tmp_path: Path) -> None:
    serializer = RecordingSerializer()
    with make_store(kind, tmp_path, serializer=serializer) as store:
        key = new_key()
        assert store.create(key, record({"a": 1}))
        loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert "dumps" in serializer.calls
    assert "loads" in serializer.calls
