"""The store conformance kit: every guarantee of ``sessionware.stores.base``, as tests.

A store's own test suite runs it in a few lines::

    import pytest
    from sessionware.testing.conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self):
            store = MyStore(...)          # fresh and empty
            yield store
            store.close()                 # and drop what it created

Each test runs twice, on the sync methods and on their async twins (the kit uses
anyio's pytest plugin, which anyio installs). The per-user tests are skipped for a store
whose ``supports_users`` is false. The built-in stores are tested with this same kit.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import anyio
import pytest

from .._expiry import Expiry
from .._keys import info_id, new_key
from .._records import Change, Fields, Loaded, Moved, Record, SessionInfo, Stale
from .._store import SessionStore, Written

HOUR = 3600.0
CONCURRENT_WRITERS = 40


def field(name: str, value: str) -> bytes:
    """A field as the default serializer encodes it."""
    return b'{"' + name.encode() + b'":"' + value.encode() + b'"}'


def fields(**values: str) -> dict[str, bytes]:
    return {name: field(name, value) for name, value in values.items()}


class Ops:
    """One store, driven through its sync methods or its async twins."""

    def __init__(self, store: SessionStore, mode: str) -> None:
        self.store = store
        self.mode = mode

    async def _call(self, name: str, *args: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.store, name)(*args)
        return await getattr(self.store, "a" + name)(*args)

    async def load(self, key: str, now: float) -> Loaded:
        result: Loaded = await self._call("load", key, now)
        return result

    async def insert(self, key: str, record: Record) -> bool:
        return bool(await self._call("insert", key, record))

    async def update(self, key: str, change: Change, now: float) -> Written:
        result: Written = await self._call("update", key, change, now)
        return result

    async def delete(self, key: str, now: float, stale_until: float) -> Written:
        result: Written = await self._call("delete", key, now, stale_until)
        return result

    async def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        result: Written = await self._call("rotate", key, new_key, record, now, stale_until)
        return result

    async def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        result: Written = await self._call("renew", key, new_key, now, grace_until)
        return result

    async def clear_expired(
        self, now: float | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        if progress is None:
            return int(await self._call("clear_expired", now))
        return int(await self._call("clear_expired", now, progress))

    async def count_expired(self, now: float | None = None) -> int:
        """The store's dry-run count; skips the test where the store cannot count."""
        try:
            return int(await self._call("count_expired", now))
        except NotImplementedError:
            pytest.skip(f"{type(self.store).__name__} cannot count expired entries")

    async def user_sessions(self, user: str | int, now: float | None = None) -> list[SessionInfo]:
        result: list[SessionInfo] = await self._call("user_sessions", user, now)
        return result

    async def revoke_session(
        self, user: str | int, session_id: str, now: float | None = None, stale_for: float = 60
    ) -> bool:
        return bool(await self._call("revoke_session", user, session_id, now, stale_for))

    async def revoke_user(
        self,
        user: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = 60,
    ) -> int:
        return int(await self._call("revoke_user", user, except_key, now, stale_for))

    async def together(self, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        """Run the calls at once: threads on the sync methods, tasks on the async ones."""
        results: list[Any] = [None] * len(calls)
        if self.mode == "async":

            async def one(index: int) -> None:
                results[index] = await calls[index]()

            async with anyio.create_task_group() as group:
                for index in range(len(calls)):
                    group.start_soon(one, index)
            return results
        barrier = threading.Barrier(len(calls))
        errors: list[BaseException] = []

        def run(index: int) -> None:
            try:
                barrier.wait()
                results[index] = anyio.run(calls[index])
            except BaseException as exc:  # reported to the test below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return results


def record(
    data: Fields | None = None,
    *,
    now: float,
    ttl: float = HOUR,
    expiry: Expiry | None = None,
    user: str | None = None,
) -> Record:
    return Record(dict(data or {}), now, now + ttl, expiry, key_at=now, updated_at=now, user=user)


def change(now: float, ttl: float = HOUR, **kwargs: Any) -> Change:
    kwargs.setdefault("expires_at", now + ttl)
    return Change(**kwargs)


def live(loaded: Loaded) -> Record:
    assert isinstance(loaded, Record), f"expected a live record, got {loaded!r}"
    return loaded


@pytest.mark.anyio
class StoreConformance:
    """The guarantees every store keeps; subclass it and provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        raise NotImplementedError("give the subclass a `store` fixture: a fresh, empty store")

    @pytest.fixture(params=["sync", "async"])
    def ops(self, request: pytest.FixtureRequest, store: SessionStore) -> Ops:
        if request.param == "sync" and not store.supports_sync:
            pytest.skip("the store offers async methods only")
        return Ops(store, request.param)

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    @pytest.fixture
    def now(self) -> float:
        return time.time()

    @pytest.fixture
    def users(self, store: SessionStore) -> None:
        if not store.supports_users:
            pytest.skip("the store keeps no per-user index")

    # -- round trips ----------------------------------------------------------------------

    async def test_unknown_key_loads_as_none(self, ops: Ops, now: float) -> None:
        assert await ops.load(new_key(), now) is None

    async def test_insert_then_load_round_trips_everything(self, ops: Ops, now: float) -> None:
        key = new_key()
        data = {
            "user": field("user", "ada"),
            "zażółć ✓": field("zażółć ✓", "ü"),
            'quote"name': b'{"quote\\"name":1}',
            "binary": b"\x00\xff\x80not json at all",
            "empty": b"",
        }
        assert await ops.insert(key, record(data, now=now, expiry=Expiry("age", 0), user="7"))
        loaded = live(await ops.load(key, now))
        assert dict(loaded.fields) == data
        assert loaded.created_at == pytest.approx(now, abs=1e-3)
        assert loaded.expires_at == pytest.approx(now + HOUR, abs=1e-3)
        assert loaded.issued_at == pytest.approx(now, abs=1e-3)
        assert loaded.touched_at == pytest.approx(now, abs=1e-3)
        assert loaded.expiry == Expiry("age", 0)
        assert loaded.user == "7"

    async def test_json_fields_round_trip_byte_for_byte(self, ops: Ops, now: float) -> None:
        key = new_key()
        data = {"a": b'{"a":[1,2.5,null,true]}', "b": b'{"b":{"$t":[1,2]}}'}
        assert await ops.insert(key, record(data, now=now))
        loaded = live(await ops.load(key, now))
        assert {name: _normal(raw) for name, raw in loaded.fields.items()} == {
            name: _normal(raw) for name, raw in data.items()
        }

    async def test_a_large_value_round_trips(self, ops: Ops, now: float) -> None:
        key = new_key()
        big = {"big": field("big", "x" * 1_000_000)}
        assert await ops.insert(key, record(big, now=now))
        assert dict(live(await ops.load(key, now)).fields) == big

    async def test_awkward_names_round_trip_and_update(self, ops: Ops, now: float) -> None:
        key = new_key()
        names = ["", "a:b", "d:x", "__meta__", "ключ", "with space", "m", "c", "e", "x", "k"]
        data = dict.fromkeys(names[:-1], b'{"v":1}')
        assert await ops.insert(key, record(data, now=now))
        delta = change(now, set={"k": b"2"}, deleted=frozenset({"a:b"}))
        assert await ops.update(key, delta, now) is True
        expected = {name: raw for name, raw in data.items() if name != "a:b"} | {"k": b"2"}
        assert dict(live(await ops.load(key, now)).fields) == expected

    async def test_absolute_expiry_round_trips(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(now=now, expiry=Expiry("at", now + 500)))
        loaded = live(await ops.load(key, now))
        assert loaded.expiry is not None
        assert loaded.expiry.kind == "at"
        assert loaded.expiry.value == pytest.approx(now + 500, abs=1e-3)

    async def test_insert_refuses_a_live_key_and_keeps_the_original(
        self, ops: Ops, now: float
    ) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now))
        assert not await ops.insert(key, record(fields(a="2"), now=now))
        assert dict(live(await ops.load(key, now)).fields) == fields(a="1")

    async def test_insert_replaces_an_expired_record(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(old="1"), now=now - 20, ttl=10))
        assert await ops.insert(key, record(fields(new="1"), now=now))
        assert dict(live(await ops.load(key, now)).fields) == fields(new="1")

    # -- expiry ---------------------------------------------------------------------------

    async def test_an_expired_record_is_never_loaded(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now - 20, ttl=10))
        assert await ops.load(key, now) is None

    async def test_load_checks_expiry_against_the_given_clock(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now, ttl=60))
        assert await ops.load(key, now + 61) is None

    async def test_clear_expired_removes_dead_records_and_markers_only(
        self, ops: Ops, now: float
    ) -> None:
        alive, dead, ended = new_key(), new_key(), new_key()
        assert await ops.insert(alive, record(fields(a="1"), now=now))
        assert await ops.insert(dead, record(fields(a="1"), now=now - 20, ttl=10))
        assert await ops.insert(ended, record(fields(a="1"), now=now))
        assert await ops.delete(ended, now, now + 30)
        removed = await ops.clear_expired(now + 31)
        assert removed >= 0  # a store whose backend expires entries may find nothing left
        assert live(await ops.load(alive, now))
        assert await ops.load(dead, now + 31) is None
        assert await ops.load(ended, now + 31) is None
        assert await ops.clear_expired(now + 31) == 0

    async def test_clear_expired_reports_its_progress(self, ops: Ops, now: float) -> None:
        for _ in range(3):
            assert await ops.insert(new_key(), record(fields(a="1"), now=now, ttl=10))
        alive = new_key()
        assert await ops.insert(alive, record(fields(a="1"), now=now))
        heard: list[int] = []
        removed = await ops.clear_expired(now + 11, heard.append)
        assert heard, "progress was never called"
        assert heard[-1] == removed
        assert heard == sorted(heard)  # removed so far: it never goes back
        assert live(await ops.load(alive, now + 11))
        heard.clear()
        assert await ops.clear_expired(now + 11, heard.append) == 0
        assert heard[-1:] == [0]

    async def test_count_expired_counts_what_clear_expired_removes(
        self, ops: Ops, now: float
    ) -> None:
        alive, ended = new_key(), new_key()
        assert await ops.insert(alive, record(fields(a="1"), now=now))
        for _ in range(3):
            assert await ops.insert(new_key(), record(fields(a="1"), now=now, ttl=10))
        assert await ops.insert(ended, record(fields(a="1"), now=now))
        assert await ops.delete(ended, now, now + 9)
        counted = await ops.count_expired(now + 11)
        assert counted >= 0  # a store whose backend expires entries may find fewer
        assert await ops.count_expired(now + 11) == counted  # counting removed nothing
        assert await ops.clear_expired(now + 11) == counted
        assert await ops.count_expired(now + 11) == 0
        assert live(await ops.load(alive, now + 11))

    # -- deltas -----------------------------------------------------------------------------

    async def test_update_applies_clear_then_delete_then_set(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1", b="2", c="3"), now=now))
        delta = change(now, set=fields(c="new", d="4"), deleted=frozenset({"a", "zz"}))
        assert await ops.update(key, delta, now) is True
        assert dict(live(await ops.load(key, now)).fields) == fields(b="2", c="new", d="4")
        assert await ops.update(key, change(now, cleared=True, set=fields(e="5")), now) is True
        assert dict(live(await ops.load(key, now)).fields) == fields(e="5")

    async def test_update_moves_expiry_and_updated_at(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(now=now, expiry=Expiry("age", 5)))
        later = now + 2
        assert await ops.update(key, change(later, ttl=7200), later) is True
        loaded = live(await ops.load(key, later))
        assert loaded.expires_at == pytest.approx(later + 7200, abs=1e-3)
        assert loaded.expiry == Expiry("age", 5)  # untouched unless expiry_changed
        assert loaded.touched_at == pytest.approx(later, abs=1e-3)
        assert loaded.created_at == pytest.approx(now, abs=1e-3)
        assert await ops.update(key, change(later, expiry_changed=True, expiry=None), later)
        assert live(await ops.load(key, later)).expiry is None

    async def test_update_of_an_unknown_key_writes_nothing(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.update(key, change(now, set=fields(x="1")), now) is False
        assert await ops.load(key, now) is None

    async def test_update_of_an_expired_record_writes_nothing(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now - 20, ttl=10))
        assert await ops.update(key, change(now, set=fields(x="1")), now) is False
        assert await ops.load(key, now) is None

    async def test_concurrent_updates_of_distinct_keys_all_survive(
        self, ops: Ops, now: float
    ) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(base="0"), now=now))
        names = [f"k{i}" for i in range(CONCURRENT_WRITERS)]

        def writer(name: str) -> Callable[[], Awaitable[Written]]:
            return lambda: ops.update(key, change(now, set=fields(**{name: name})), now)

        results = await ops.together([writer(name) for name in names])
        assert all(result is True for result in results)
        loaded = dict(live(await ops.load(key, now)).fields)
        assert loaded == {"base": field("base", "0"), **{n: field(n, n) for n in names}}

    # -- ending a key: no resurrection ----------------------------------------------------

    async def test_delete_leaves_a_stale_marker_for_the_window(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now))
        assert await ops.delete(key, now, now + 60) is True
        loaded = await ops.load(key, now)
        assert isinstance(loaded, Stale)
        assert loaded.until == pytest.approx(now + 60, abs=1e-3)
        assert await ops.load(key, now + 61) is None

    async def test_delete_without_a_window_forgets_the_key(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(a="1"), now=now))
        assert await ops.delete(key, now, now) is True
        assert await ops.load(key, now) is None

    async def test_delete_of_an_unknown_or_ended_key_is_false(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.delete(key, now, now + 60) is False
        assert await ops.insert(key, record(now=now))
        assert await ops.delete(key, now, now + 60) is True
        assert await ops.delete(key, now, now + 60) is False
        assert isinstance(await ops.load(key, now), Stale)

    async def test_an_ended_key_is_never_written_again(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(user="ada"), now=now))
        assert await ops.delete(key, now, now + 60) is True
        assert await ops.update(key, change(now, set=fields(user="eve")), now) is False
        assert not await ops.insert(key, record(fields(user="eve"), now=now))
        other = new_key()
        assert await ops.rotate(key, other, record(now=now), now, now + 60) is False
        assert await ops.renew(key, other, now, now + 30) is False
        assert isinstance(await ops.load(key, now), Stale)
        assert await ops.load(other, now) is None

    async def test_logout_racing_writers_stays_logged_out(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(fields(user="ada"), now=now))
        writes = [
            (lambda n=n: ops.update(key, change(now, set=fields(**{f"k{n}": "x"})), now))
            for n in range(10)
        ]
        await ops.together([lambda: ops.delete(key, now, now + 60), *writes])
        assert isinstance(await ops.load(key, now), Stale)

    # -- rotation (login) -------------------------------------------------------------------

    async def test_rotate_moves_the_session_and_ends_the_old_key(
        self, ops: Ops, now: float
    ) -> None:
        old, new = new_key(), new_key()
        assert await ops.insert(old, record(fields(cart="1"), now=now))
        snapshot = record(fields(cart="1", user="ada"), now=now, user="ada")
        assert await ops.rotate(old, new, snapshot, now, now + 60) is True
        assert isinstance(await ops.load(old, now), Stale)
        assert dict(live(await ops.load(new, now)).fields) == fields(cart="1", user="ada")
        assert await ops.update(old, change(now, set=fields(late="1")), now) is False

    async def test_rotate_of_an_unknown_key_writes_nothing(self, ops: Ops, now: float) -> None:
        old, new = new_key(), new_key()
        assert await ops.rotate(old, new, record(fields(a="1"), now=now), now, now + 60) is False
        assert await ops.load(new, now) is None

    async def test_of_two_concurrent_rotations_one_wins(self, ops: Ops, now: float) -> None:
        old, first, second = new_key(), new_key(), new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now))
        results = await ops.together(
            [
                lambda: ops.rotate(old, first, record(fields(a="1"), now=now), now, now + 60),
                lambda: ops.rotate(old, second, record(fields(a="1"), now=now), now, now + 60),
            ]
        )
        assert sorted(results) == [False, True]
        winner, loser = (first, second) if results[0] is True else (second, first)
        assert isinstance(await ops.load(winner, now), Record)
        assert await ops.load(loser, now) is None

    # -- renewal ----------------------------------------------------------------------------

    async def test_renew_leaves_a_forward_pointer(self, ops: Ops, now: float) -> None:
        old, new = new_key(), new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now - 100, ttl=HOUR + 100))
        assert await ops.renew(old, new, now, now + 30) is True
        pointer = await ops.load(old, now)
        assert isinstance(pointer, Moved)
        assert pointer.key == new
        assert pointer.until == pytest.approx(now + 30, abs=1e-3)
        moved = live(await ops.load(new, now))
        assert dict(moved.fields) == fields(a="1")
        assert moved.issued_at == pytest.approx(now, abs=1e-3)
        assert moved.created_at == pytest.approx(now - 100, abs=1e-3)
        assert await ops.load(old, now + 31) is None

    async def test_writes_to_a_renewed_key_return_the_pointer(self, ops: Ops, now: float) -> None:
        old, new = new_key(), new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now))
        assert await ops.renew(old, new, now, now + 30) is True
        for result in (
            await ops.update(old, change(now, set=fields(b="2")), now),
            await ops.delete(old, now, now + 60),
            await ops.rotate(old, new_key(), record(now=now), now, now + 60),
            await ops.renew(old, new_key(), now, now + 30),
        ):
            assert isinstance(result, Moved)
            assert result.key == new
        assert dict(live(await ops.load(new, now)).fields) == fields(a="1")

    async def test_rotate_and_renew_onto_a_taken_key_write_nothing(
        self, ops: Ops, now: float
    ) -> None:
        old, taken = new_key(), new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now))
        assert await ops.insert(taken, record(fields(other="1"), now=now))
        assert await ops.rotate(old, taken, record(fields(a="2"), now=now), now, now + 60) is False
        assert await ops.renew(old, taken, now, now + 30) is False
        assert dict(live(await ops.load(old, now)).fields) == fields(a="1")
        assert dict(live(await ops.load(taken, now)).fields) == fields(other="1")

    async def test_an_expired_pointer_leads_nowhere(self, ops: Ops, now: float) -> None:
        old, new = new_key(), new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now))
        assert await ops.renew(old, new, now, now + 30) is True
        later = now + 31
        assert await ops.load(old, later) is None
        assert await ops.update(old, change(later, set=fields(b="2")), later) is False
        assert await ops.delete(old, later, later + 60) is False
        assert dict(live(await ops.load(new, later)).fields) == fields(a="1")

    async def test_concurrent_renewals_make_one_new_key(self, ops: Ops, now: float) -> None:
        old = new_key()
        assert await ops.insert(old, record(fields(a="1"), now=now))
        candidates = [new_key() for _ in range(8)]
        results = await ops.together([_renewal(ops, old, k, now) for k in candidates])
        assert results.count(True) == 1
        winner = candidates[results.index(True)]
        assert all(isinstance(r, Moved) and r.key == winner for r in results if r is not True)
        assert [k for k in candidates if isinstance(await ops.load(k, now), Record)] == [winner]

    # -- the per-user index -------------------------------------------------------------------

    @pytest.mark.usefixtures("users")
    async def test_user_sessions_lists_live_sessions_newest_first(
        self, ops: Ops, now: float
    ) -> None:
        keys = [new_key() for _ in range(3)]
        for age, key in enumerate(keys):
            assert await ops.insert(key, record(fields(u="1"), now=now - 10 * age, user="42"))
        assert await ops.insert(new_key(), record(fields(u="2"), now=now, user="43"))
        assert await ops.insert(new_key(), record(now=now))
        infos = await ops.user_sessions(42, now)
        assert [info.id for info in infos] == [info_id(key) for key in keys]
        assert await ops.user_sessions("42", now) == infos
        for info, key in zip(infos, keys, strict=True):
            assert key not in repr(info)
            assert info.expires_at.timestamp() > now

    @pytest.mark.usefixtures("users")
    async def test_the_index_follows_the_user_value(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(now=now))
        assert await ops.user_sessions("u1", now) == []
        assert await ops.update(key, change(now, user_changed=True, user="u1"), now) is True
        assert [i.id for i in await ops.user_sessions("u1", now)] == [info_id(key)]
        assert await ops.update(key, change(now, set=fields(x="1")), now) is True
        assert [i.id for i in await ops.user_sessions("u1", now)] == [info_id(key)]
        assert await ops.update(key, change(now, user_changed=True, user="u2"), now) is True
        assert await ops.user_sessions("u1", now) == []
        assert [i.id for i in await ops.user_sessions("u2", now)] == [info_id(key)]
        assert await ops.update(key, change(now, user_changed=True, user=None), now) is True
        assert await ops.user_sessions("u2", now) == []

    @pytest.mark.usefixtures("users")
    async def test_the_index_follows_logout_rotation_renewal_and_expiry(
        self, ops: Ops, now: float
    ) -> None:
        flushed, rotated, renewed, expiring = (new_key() for _ in range(4))
        for key in (flushed, rotated, renewed):
            assert await ops.insert(key, record(now=now, user="u"))
        assert await ops.insert(expiring, record(now=now, ttl=5, user="u"))
        assert await ops.delete(flushed, now, now + 60) is True
        new_rotated, new_renewed = new_key(), new_key()
        assert await ops.rotate(rotated, new_rotated, record(now=now, user="u"), now, now + 60)
        assert await ops.renew(renewed, new_renewed, now, now + 30) is True
        listed = {info.id for info in await ops.user_sessions("u", now + 10)}
        assert listed == {info_id(new_rotated), info_id(new_renewed)}

    @pytest.mark.usefixtures("users")
    async def test_revoke_user_ends_all_but_one(self, ops: Ops, now: float) -> None:
        keys = [new_key() for _ in range(3)]
        for key in keys:
            assert await ops.insert(key, record(fields(user="u"), now=now, user="u"))
        assert await ops.revoke_user("u", except_key=keys[0], now=now) == 2
        assert isinstance(await ops.load(keys[0], now), Record)
        for key in keys[1:]:
            assert isinstance(await ops.load(key, now), Stale)
            assert await ops.update(key, change(now, set=fields(x="1")), now) is False
        assert [info.id for info in await ops.user_sessions("u", now)] == [info_id(keys[0])]
        assert await ops.revoke_user("u", now=now) == 1
        assert await ops.user_sessions("u", now) == []

    @pytest.mark.usefixtures("users")
    async def test_revoke_session_by_its_public_id(self, ops: Ops, now: float) -> None:
        mine, other = new_key(), new_key()
        for key in (mine, other):
            assert await ops.insert(key, record(now=now, user="u"))
        assert not await ops.revoke_session("someone else", info_id(other), now)
        assert not await ops.revoke_session("u", "no-such-id", now)
        assert await ops.revoke_session("u", info_id(other), now)
        assert isinstance(await ops.load(other, now), Stale)
        assert isinstance(await ops.load(mine, now), Record)
        assert not await ops.revoke_session("u", info_id(other), now)

    @pytest.mark.usefixtures("users")
    async def test_an_expired_session_is_neither_listed_nor_revoked(
        self, ops: Ops, now: float
    ) -> None:
        key = new_key()
        assert await ops.insert(key, record(now=now, ttl=5, user="u"))
        (info,) = await ops.user_sessions("u", now)
        assert not await ops.revoke_session("u", info.id, now + 6)
        assert await ops.user_sessions("u", now + 6) == []
        assert await ops.revoke_user("u", now=now + 6) == 0

    @pytest.mark.usefixtures("users")
    async def test_two_logins_at_once_are_both_listed(self, ops: Ops, now: float) -> None:
        first, second = new_key(), new_key()
        await ops.together(
            [
                lambda: ops.insert(first, record(now=now, user="u")),
                lambda: ops.insert(second, record(now=now, user="u")),
            ]
        )
        listed = {info.id for info in await ops.user_sessions("u", now)}
        assert listed == {info_id(first), info_id(second)}

    @pytest.mark.usefixtures("users")
    async def test_a_rotation_racing_a_revoke_does_not_escape_it(
        self, ops: Ops, now: float
    ) -> None:
        for _ in range(5):
            old, new = new_key(), new_key()
            assert await ops.insert(old, record(now=now, user="u"))
            login = record(now=now, user="u")
            await ops.together(
                [
                    partial(ops.rotate, old, new, login, now, now + 60),
                    partial(ops.revoke_user, "u", None, now),
                ]
            )
            assert not isinstance(await ops.load(old, now), Record)
            assert not isinstance(await ops.load(new, now), Record)
            assert await ops.user_sessions("u", now) == []

    @pytest.mark.usefixtures("users")
    async def test_a_logout_racing_a_revoke_ends_the_session(self, ops: Ops, now: float) -> None:
        for _ in range(5):
            key = new_key()
            assert await ops.insert(key, record(now=now, user="u"))
            await ops.together(
                [partial(ops.delete, key, now, now + 60), partial(ops.revoke_user, "u", None, now)]
            )
            assert isinstance(await ops.load(key, now), Stale)
            assert await ops.user_sessions("u", now) == []

    @pytest.mark.usefixtures("users")
    async def test_clear_expired_also_cleans_the_index(self, ops: Ops, now: float) -> None:
        key = new_key()
        assert await ops.insert(key, record(now=now, ttl=5, user="u"))
        await ops.clear_expired(now + 6)
        assert await ops.user_sessions("u", now + 6) == []
        assert await ops.user_sessions("u", now) == []


def _renewal(ops: Ops, old: str, new: str, now: float) -> Callable[[], Awaitable[Written]]:
    return partial(ops.renew, old, new, now, now + 30)


def _normal(raw: bytes) -> Any:
    return json.loads(raw)
