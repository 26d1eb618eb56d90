"""RedisStore on the real server: round trips, layout, TTL, corruption, clients, loops, outages."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any

import pytest
import redis
import redis.asyncio

from sessionware._errors import SessionStoreError
from sessionware._expiry import Expiry
from sessionware._keys import key_fingerprint, new_key
from sessionware._records import Change, Record
from sessionware.stores import RedisStore
from sessionware.stores.base import SessionStore
from tests.servers import REDIS_URL, require_server
from tests.stores.factories import unique

pytestmark = pytest.mark.redis

NOW = time.time()
HOUR = 3600.0
CLOSED_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def record(data: dict[str, Any], expires_in: float = HOUR) -> Record:
    return Record(data, created_at=NOW, expires_at=NOW + expires_in)


def change(**kwargs: Any) -> Change:
    kwargs.setdefault("expires_at", NOW + HOUR)
    return Change(**kwargs)


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    """A plain client on the test database, to look behind the store's back."""
    require_server("redis")
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def store(raw: redis.Redis) -> Iterator[RedisStore]:
    made = RedisStore(REDIS_URL, prefix=unique("swtest") + ":")
    yield made
    made.delete_all()
    made.close()


class CommandLog:
    """The commands the server received for keys under ``prefix``, seen through MONITOR.

    Commands a Lua script runs are left out: a script call is one round trip. Other
    tests may use the server meanwhile; the unique prefix keeps their commands out.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.commands: list[str] = []
        self._client = redis.Redis.from_url(REDIS_URL)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]

    def __enter__(self) -> CommandLog:
        self._monitor.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        marker = f"{self.prefix}end-{uuid.uuid4().hex}"
        self._client.exists(marker)  # a command of our own ends the log
        try:
            while True:
                seen = self._monitor.next_command()
                command: str = seen["command"]
                if marker in command:
                    break
                if seen["client_type"] != "lua" and self.prefix in command:
                    self.commands.append(command.split(" ", 1)[0].upper())
        finally:
            self._monitor.__exit__(kind, exc, tb)
            self._client.close()


def twin(mode: str, store: SessionStore, name: str) -> Callable[..., Any]:
    """The sync method, or its async twin run in a fresh event loop."""
    if mode == "sync":
        method: Callable[..., Any] = getattr(store, name)
        return method
    amethod: Callable[..., Coroutine[Any, Any, Any]] = getattr(store, "a" + name)
    return lambda *args: asyncio.run(amethod(*args))


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


@MODES
def test_each_operation_is_one_command(mode: str, store: RedisStore) -> None:
    async_ = mode == "async"

    async def run() -> list[list[str]]:
        key = new_key()
        warm = new_key()  # scripts loaded and connection open: no SCRIPT LOAD, no handshake
        counts: list[list[str]] = []
        ops: list[tuple[str, tuple[Any, ...]]] = [
            ("create", (key, record({"a": 1, "b": 2}))),
            ("load", (key, NOW)),
            ("update", (key, change(set={"c": 3}, deleted=frozenset({"a"}), cleared=False), NOW)),
            ("update", (key, change(cleared=True, expiry_changed=True, expiry=None), NOW)),
            ("delete", (key,)),
        ]
        for name, args in [("create", (warm, record({}))), ("update", (warm, change(), NOW))]:
            await call(name, args)
        for name, args in ops:
            with CommandLog(store.prefix) as log:
                await call(name, args)
            counts.append(log.commands)
        return counts

    async def call(name: str, args: tuple[Any, ...]) -> Any:
        if async_:
            return await getattr(store, "a" + name)(*args)
        return getattr(store, name)(*args)

    counts = asyncio.run(run())
    assert counts == [["EVALSHA"], ["HGETALL"], ["EVALSHA"], ["EVALSHA"], ["DEL"]]


def test_layout_one_hash_with_prefixed_data_fields(store: RedisStore, raw: redis.Redis) -> None:
    key = new_key()
    store.create(key, Record({"user": "ada"}, NOW, NOW + HOUR, Expiry("age", 300)))
    fields = raw.hgetall(store.prefix + key)
    assert fields[b"d:user"] == store.serializer.dumps({"user": "ada"})
    assert float(fields[b"c"]) == NOW
    assert float(fields[b"e"]) == NOW + HOUR
    assert json.loads(fields[b"x"]) == ["age", 300]
    assert set(fields) == {b"c", b"e", b"x", b"d:user"}


@MODES
def test_ttl_is_set_from_expires_at(mode: str, store: RedisStore, raw: redis.Redis) -> None:
    key, name = new_key(), store.prefix
    twin(mode, store, "create")(key, record({"a": 1}, expires_in=HOUR))
    assert raw.pexpiretime(name + key) == math.ceil((NOW + HOUR) * 1000)
    later = NOW + 2 * HOUR
    assert twin(mode, store, "update")(key, change(expires_at=later), NOW)
    assert raw.pexpiretime(name + key) == math.ceil(later * 1000)


def test_record_past_its_expiry_is_gone_from_redis(store: RedisStore, raw: redis.Redis) -> None:
    key = new_key()
    assert store.create(key, record({"a": 1}, expires_in=0.3))
    time.sleep(0.5)
    assert raw.exists(store.prefix + key) == 0
    assert store.load(key, time.time()) is None


@MODES
def test_data_names_never_collide_with_meta(mode: str, store: RedisStore) -> None:
    key = new_key()
    names = {"c": 1, "e": 2, "x": 3, "m": 4, "d:x": 5, "": 6, "d:": 7}
    twin(mode, store, "create")(key, record(names))
    assert twin(mode, store, "update")(key, change(set={"e": 20}, deleted=frozenset({"c"})), NOW)
    loaded = twin(mode, store, "load")(key, NOW)
    assert loaded is not None
    assert loaded.data == {**{k: v for k, v in names.items() if k != "c"}, "e": 20}
    assert loaded.created_at == NOW
    assert loaded.expires_at == NOW + HOUR


def test_many_fields_and_large_change(store: RedisStore) -> None:
    key = new_key()
    many = {f"k{i}": i for i in range(20_000)}
    assert store.create(key, record(many))
    delta = change(set={f"n{i}": i for i in range(20_000)}, deleted=frozenset(list(many)[:15_000]))
    assert store.update(key, delta, NOW)
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert len(loaded.data) == 25_000
    assert store.update(key, change(cleared=True, set={"only": 1}), NOW)
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"only": 1}


CORRUPTIONS: dict[str, Callable[[redis.Redis, str], object]] = {
    "undecodable field": lambda r, name: r.hset(name, "d:a", b"\xff{not json"),
    "field without its key": lambda r, name: r.hset(name, "d:a", b'{"b":1}'),
    "missing meta": lambda r, name: r.hdel(name, "c"),
    "bad timestamp": lambda r, name: r.hset(name, "e", b"soon"),
    "foreign hash": lambda r, name: (r.delete(name), r.hset(name, "owner", "other app")),
    "another type": lambda r, name: (r.delete(name), r.set(name, b"a string")),
}


@MODES
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_unreadable_record_loads_as_none_with_one_warning_without_the_key(
    mode: str,
    corruption: str,
    store: RedisStore,
    raw: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = new_key()
    store.create(key, record({"a": 1}))
    CORRUPTIONS[corruption](raw, store.prefix + key)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert twin(mode, store, "load")(key, NOW) is None
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert key_fingerprint(key) in warnings_[0].getMessage()
    assert key not in caplog.text


def test_foreign_keys_are_neither_updated_nor_overwritten(
    store: RedisStore, raw: redis.Redis
) -> None:
    key, other = new_key(), new_key()
    raw.set(store.prefix + key, b"a string")
    raw.hset(store.prefix + other, "owner", "other app")
    for taken in (key, other):
        assert not store.update(taken, change(set={"x": 1}), NOW)
        assert not store.create(taken, record({"x": 1}))
    assert raw.get(store.prefix + key) == b"a string"
    assert raw.hgetall(store.prefix + other) == {b"owner": b"other app"}


@MODES
def test_clear_expired_removes_records_that_lost_their_ttl(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    dead, live = new_key(), new_key()
    store.create(dead, record({"a": 1}, expires_in=60))
    store.create(live, record({"a": 1}, expires_in=HOUR))
    raw.persist(store.prefix + dead)
    raw.persist(store.prefix + live)
    clear = twin(mode, store, "clear_expired")
    assert clear(NOW + 120) == 1
    assert raw.exists(store.prefix + dead) == 0
    assert store.load(live, NOW + 120) is not None
    assert clear(NOW + 120) == 0


@MODES
def test_clear_expired_removes_every_doomed_record_across_batches(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    doomed = [new_key() for _ in range(1_200)]  # more than one scan batch of 500
    live = new_key()
    pipe = raw.pipeline(transaction=False)
    for key in doomed:
        pipe.hset(store.prefix + key, mapping={"c": repr(NOW), "e": repr(NOW + 60)})
    pipe.execute()
    store.create(live, record({"a": 1}, expires_in=HOUR))
    assert twin(mode, store, "clear_expired")(NOW + 120) == len(doomed)
    assert sum(raw.exists(store.prefix + key) for key in doomed) == 0
    assert store.load(live, NOW + 120) is not None


def test_delete_all_stays_inside_its_prefix(raw: redis.Redis) -> None:
    base = unique("swtest")
    awkward = RedisStore(REDIS_URL, prefix=base + "*[a]:")
    neighbour = RedisStore(REDIS_URL, prefix=base + "zzza:")  # "*[a]:*" unescaped matches it
    try:
        for index in range(1200):
            awkward.create(f"k{index}", record({}))
        neighbour.create("n", record({}))
        assert awkward.delete_all() == 1200
        assert neighbour.load("n", NOW) is not None
    finally:
        neighbour.delete_all()
        awkward.close()
        neighbour.close()


def test_a_ready_client_serves_sync_and_async(raw: redis.Redis) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    store = RedisStore(client=client, prefix=unique("swtest") + ":")
    try:
        key = new_key()
        assert store.create(key, record({"a": 1}))
        assert asyncio.run(store.aupdate(key, change(set={"b": 2}), NOW))
        loaded = asyncio.run(store.aload(key, NOW))
        assert loaded is not None
        assert loaded.data == {"a": 1, "b": 2}
        store.close()
        assert client.ping()  # the store does not close a client it was given
    finally:
        store.delete_all()
        client.close()


def test_a_ready_async_client_is_used_as_given() -> None:
    require_server("redis")
    prefix = unique("swtest") + ":"

    async def run() -> Record | None:
        aclient = redis.asyncio.Redis.from_url(REDIS_URL)
        store = RedisStore(REDIS_URL, async_client=aclient, prefix=prefix)
        key = new_key()
        try:
            with CommandLog(prefix) as log:
                assert await store.acreate(key, record({"a": 1}))
            assert log.commands in (["EVALSHA"], ["EVALSHA", "EVALSHA"])
            return await store.aload(key, NOW)
        finally:
            store.delete_all()
            await store.aclose()
            await aclient.aclose()

    loaded = asyncio.run(run())
    assert loaded is not None
    assert loaded.data == {"a": 1}


def test_a_decoding_client_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(client=redis.Redis.from_url(REDIS_URL, decode_responses=True))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix"),
        ({"timeout": 0}, "timeout"),
        ({"url": "http://127.0.0.1:6379/0"}, "redis"),
    ],
)
def test_configuration_mistakes_are_value_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisStore(**kwargs)


def test_async_twins_do_not_hop_to_a_thread(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("RedisStore hopped to a thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)

    async def run() -> None:
        key = new_key()
        assert await store.acreate(key, record({"a": 1}))
        assert await store.aupdate(key, change(set={"b": 2}), NOW)
        assert await store.aload(key, NOW) is not None
        assert await store.aclear_expired(NOW) == 0
        assert await store.adelete(key)

    asyncio.run(run())


def test_one_store_serves_event_loops_in_turn_and_closes_their_clients(
    store: RedisStore,
) -> None:
    key = new_key()
    store.create(key, record({"n": 0}))

    async def bump(n: int) -> Record | None:
        await asyncio.gather(
            *(store.aupdate(key, change(set={f"k{n}_{i}": i}), NOW) for i in range(5))
        )
        return await store.aload(key, NOW)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(3):
            loaded = asyncio.run(bump(n))
            assert loaded is not None
            assert len(loaded.data) == 1 + 5 * (n + 1)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert store._per_loop is not None
    assert store._per_loop._items == {}  # each loop's client was closed as the loop ended


def test_aclose_closes_this_loops_client_and_the_store_stays_usable(store: RedisStore) -> None:
    async def run() -> None:
        assert await store.aload(new_key(), NOW) is None
        await store.aclose()
        assert store._per_loop is not None
        assert store._per_loop._items == {}
        assert await store.aload(new_key(), NOW) is None  # a new client for this loop

    asyncio.run(run())


def test_close_from_another_thread_closes_a_running_loops_client(store: RedisStore) -> None:
    used, finish = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    async def serve() -> None:
        await store.aload(new_key(), NOW)
        used.set()
        while not finish.is_set():
            await asyncio.sleep(0.005)
        assert await store.aload(new_key(), NOW) is None

    def thread() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # re-raised in the test below
            errors.append(exc)

    server = threading.Thread(target=thread)
    server.start()
    assert used.wait(5)
    store.close()  # closes that loop's client on that loop, while it runs
    assert store._per_loop is not None
    deadline = time.monotonic() + 2
    while store._per_loop._items and time.monotonic() < deadline:
        time.sleep(0.005)
    assert store._per_loop._items == {}
    finish.set()
    server.join(5)
    assert errors == []


@MODES
@pytest.mark.parametrize("name", ["load", "create", "update", "delete", "clear_expired"])
def test_a_server_that_is_down_fails_fast_with_session_store_error(mode: str, name: str) -> None:
    store = RedisStore(CLOSED_URL, prefix="swtest:", timeout=1.0)  # constructing never connects
    args: dict[str, tuple[Any, ...]] = {
        "load": (new_key(), NOW),
        "create": (new_key(), record({"a": 1})),
        "update": (new_key(), change(set={"a": 1}), NOW),
        "delete": (new_key(),),
        "clear_expired": (NOW,),
    }
    started = time.perf_counter()
    with pytest.raises(SessionStoreError) as failure:
        twin(mode, store, name)(*args[name])
    assert time.perf_counter() - started < 0.5
    assert isinstance(failure.value.__cause__, redis.ConnectionError)
    store.close()
