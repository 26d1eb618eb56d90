"""RedisStore on the real server: layout, round trips, TTLs, foreign data, clients, outages.

The contract itself is checked by the conformance kit (``test_conformance.py``); the
per-user index and the Redis Cluster fallback by ``test_redis_index.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import socket
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
from sessionware._records import Change, Moved, Record, Stale
from sessionware.stores import RedisStore
from sessionware.stores.base import SessionStore
from tests.servers import REDIS_URL, require_server
from tests.stores.factories import unique

pytestmark = pytest.mark.redis

NOW = time.time()
HOUR = 3600.0
CLOSED_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused
MODES = pytest.mark.parametrize("mode", ["sync", "async"])


def field(name: str, value: object) -> bytes:
    """A field as the default serializer encodes it (what the previous version stored)."""
    return b'{"' + name.encode() + b'":' + repr(value).encode() + b"}"


def record(
    fields: dict[str, bytes] | None = None,
    expires_in: float = HOUR,
    user: str | None = None,
    expiry: Expiry | None = None,
) -> Record:
    return Record(
        dict(fields or {}), NOW, NOW + expires_in, expiry, key_at=NOW, updated_at=NOW, user=user
    )


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

    ``commands`` are the names of the commands clients sent (a script call is one);
    ``scripts`` pairs each script call with the commands the script ran. Other tests may
    use the server meanwhile; the unique prefix keeps their commands out.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.commands: list[str] = []
        self.scripts: list[tuple[list[str], list[list[str]]]] = []
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
                if self.prefix in command:
                    self._note(seen["client_type"] == "lua", command.split(" "))
        finally:
            self._monitor.__exit__(kind, exc, tb)
            self._client.close()

    def _note(self, by_script: bool, words: list[str]) -> None:
        if not by_script:
            self.commands.append(words[0].upper())
            if words[0].upper() == "EVALSHA":
                self.scripts.append((words[3 : 3 + int(words[2])], []))
        elif self.scripts:  # a script's commands follow its call, never interleaved
            self.scripts[-1][1].append(words)


def twin(mode: str, store: SessionStore, name: str) -> Callable[..., Any]:
    """The sync method, or its async twin run in a fresh event loop."""
    if mode == "sync":
        method: Callable[..., Any] = getattr(store, name)
        return method
    amethod: Callable[..., Coroutine[Any, Any, Any]] = getattr(store, "a" + name)
    return lambda *args: asyncio.run(amethod(*args))


# -- one round trip per operation ------------------------------------------------------------


@MODES
def test_each_load_and_each_write_is_one_command(mode: str, store: RedisStore) -> None:
    key, rotated, renewed = new_key(), new_key(), new_key()
    ops: list[tuple[str, tuple[Any, ...]]] = [
        ("insert", (key, record({"a": field("a", 1)}, user="ada"))),
        ("load", (key, NOW)),
        ("update", (key, change(set={"c": field("c", 3)}, deleted=frozenset({"a"})), NOW)),
        ("update", (key, change(cleared=True, user_changed=True, user="bob"), NOW)),
        ("rotate", (key, rotated, record(user="bob"), NOW, NOW + 60)),
        ("renew", (rotated, renewed, NOW, NOW + 30)),
        ("delete", (renewed, NOW, NOW + 60)),
        ("load", (renewed, NOW)),
    ]

    async def run() -> list[list[str]]:
        warm = [new_key() for _ in range(3)]  # scripts loaded, connection open
        await call("insert", (warm[0], record()))
        for name, args in [
            ("update", (warm[0], change(), NOW)),
            ("rotate", (warm[0], warm[1], record(), NOW, NOW + 60)),
            ("renew", (warm[1], warm[2], NOW, NOW + 30)),
            ("delete", (warm[2], NOW, NOW + 60)),
        ]:
            await call(name, args)
        counts = []
        for name, args in ops:
            with CommandLog(store.prefix) as log:
                await call(name, args)
            counts.append(log.commands)
        return counts

    async def call(name: str, args: tuple[Any, ...]) -> Any:
        if mode == "async":
            return await getattr(store, "a" + name)(*args)
        return getattr(store, name)(*args)

    counts = asyncio.run(run())
    assert counts == [["EVALSHA"], ["HGETALL"], *[["EVALSHA"]] * 5, ["HGETALL"]]


# -- layout ----------------------------------------------------------------------------------


def test_a_record_is_one_hash_of_meta_fields_and_prefixed_data_fields(
    store: RedisStore, raw: redis.Redis
) -> None:
    key = new_key()
    data = {"user": field("user", "ada"), "e": b"\x00raw bytes"}
    assert store.insert(key, record(data, user="7", expiry=Expiry("age", 300)))
    assert raw.hgetall(store.prefix + key) == {
        b"c": repr(NOW).encode(),
        b"e": repr(NOW + HOUR).encode(),
        b"x": b'["age", 300]',
        b"k": repr(NOW).encode(),
        b"t": repr(NOW).encode(),
        b"u": b"7",
        b"d:user": data["user"],
        b"d:e": data["e"],
    }


def test_data_written_by_the_previous_version_loads_and_takes_deltas(
    store: RedisStore, raw: redis.Redis
) -> None:
    key = new_key()
    name = store.prefix + key
    previous: dict[Any, Any] = {"c": repr(NOW), "e": repr(NOW + HOUR), "x": '["age", 300]'}
    previous |= {"d:user": b'{"user": "ada"}', "d:n": b'{"n": 1}'}  # serializer.dumps({k: v})
    raw.hset(name, mapping=previous)
    raw.pexpireat(name, math.ceil((NOW + HOUR) * 1000))
    loaded = store.load(key, NOW)
    assert loaded == Record(
        {"user": b'{"user": "ada"}', "n": b'{"n": 1}'}, NOW, NOW + HOUR, Expiry("age", 300)
    )
    assert store.update(key, change(set={"n": b'{"n":2}'}), NOW) is True
    updated = store.load(key, NOW)
    assert isinstance(updated, Record)
    assert dict(updated.fields) == {"user": b'{"user": "ada"}', "n": b'{"n":2}'}


def test_markers_live_in_the_session_hash_and_expire_with_it(
    store: RedisStore, raw: redis.Redis
) -> None:
    ended, renewed, successor = new_key(), new_key(), new_key()
    for key in (ended, renewed):
        assert store.insert(key, record({"a": field("a", 1)}, user="u"))
    assert store.delete(ended, NOW, NOW + 60) is True
    assert raw.hgetall(store.prefix + ended) == {b"e": repr(NOW + 60).encode(), b"m": b"stale"}
    assert raw.pexpiretime(store.prefix + ended) == math.ceil((NOW + 60) * 1000)
    assert store.load(ended, NOW) == Stale(NOW + 60)
    assert store.renew(renewed, successor, NOW, NOW + 30) is True
    assert raw.hgetall(store.prefix + renewed) == {
        b"e": repr(NOW + 30).encode(),
        b"m": b"moved",
        b"n": successor.encode(),
    }
    assert raw.pexpiretime(store.prefix + renewed) == math.ceil((NOW + 30) * 1000)
    assert store.load(renewed, NOW) == Moved(successor, NOW + 30)


# -- TTLs ------------------------------------------------------------------------------------


@MODES
def test_every_write_sets_the_ttl_from_the_record(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    def expires(key: str) -> int:
        return int(raw.pexpiretime(store.prefix + key))

    key, rotated, renewed = new_key(), new_key(), new_key()
    assert twin(mode, store, "insert")(key, record(expires_in=HOUR))
    assert expires(key) == math.ceil((NOW + HOUR) * 1000)
    later = NOW + 2 * HOUR
    assert twin(mode, store, "update")(key, change(expires_at=later), NOW) is True
    assert expires(key) == math.ceil(later * 1000)
    assert twin(mode, store, "rotate")(key, rotated, record(expires_in=900), NOW, NOW + 60)
    assert expires(rotated) == math.ceil((NOW + 900) * 1000)
    assert twin(mode, store, "renew")(rotated, renewed, NOW, NOW + 30) is True
    assert expires(renewed) == math.ceil((NOW + 900) * 1000)


@MODES
def test_a_session_saved_already_expired_leaves_no_key(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    gone, lapsing = new_key(), new_key()
    assert twin(mode, store, "insert")(gone, record({"a": field("a", 1)}, expires_in=-1))
    assert raw.exists(store.prefix + gone) == 0
    assert twin(mode, store, "insert")(lapsing, record({"a": field("a", 1)}))
    past = change(set={"b": field("b", 2)}, expires_at=time.time() - 1)
    assert twin(mode, store, "update")(lapsing, past, NOW) is True
    assert raw.exists(store.prefix + lapsing) == 0


@MODES
def test_a_failed_script_leaves_no_key_without_a_ttl(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    endless = 1e300  # beyond what PEXPIREAT takes: the script fails after its first write
    fresh, key, new = new_key(), new_key(), new_key()
    with pytest.raises(SessionStoreError):
        twin(mode, store, "insert")(fresh, record({"a": field("a", 1)}, expires_in=endless))
    assert raw.exists(store.prefix + fresh) == 0
    assert twin(mode, store, "insert")(key, record({"a": field("a", 1)}))
    before = raw.hgetall(store.prefix + key), raw.pexpiretime(store.prefix + key)
    with pytest.raises(SessionStoreError):
        twin(mode, store, "update")(key, change(set={"b": b"2"}, expires_at=endless), NOW)
    assert (raw.hgetall(store.prefix + key), raw.pexpiretime(store.prefix + key)) == before
    with pytest.raises(SessionStoreError):
        twin(mode, store, "rotate")(key, new, record(expires_in=endless), NOW, NOW + 60)
    assert raw.exists(store.prefix + new) == 0
    assert isinstance(store.load(key, NOW), Record)
    hashes = list(raw.scan_iter(match=store.prefix + "*", _type="hash"))
    assert hashes == [(store.prefix + key).encode()]
    assert all(raw.pttl(name) > 0 for name in hashes)


# -- sizes -----------------------------------------------------------------------------------


def test_many_fields_and_large_changes_go_in_chunks(store: RedisStore) -> None:
    key, renewed = new_key(), new_key()
    many = {f"k{i}": b"%d" % i for i in range(20_000)}
    assert store.insert(key, record(many))
    delta = change(
        set={f"n{i}": b"%d" % i for i in range(20_000)}, deleted=frozenset(list(many)[:15_000])
    )
    assert store.update(key, delta, NOW) is True
    assert store.renew(key, renewed, NOW, NOW + 30) is True
    loaded = store.load(renewed, NOW)
    assert isinstance(loaded, Record)
    assert len(loaded.fields) == 25_000
    assert store.update(renewed, change(cleared=True, set={"only": b"1"}), NOW) is True
    loaded = store.load(renewed, NOW)
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == {"only": b"1"}


# -- foreign data under the prefix -----------------------------------------------------------


CORRUPTIONS: dict[str, Callable[[redis.Redis, str], object]] = {
    "missing created_at": lambda r, name: r.hdel(name, "c"),
    "bad timestamp": lambda r, name: r.hset(name, "e", b"soon"),
    "endless timestamp": lambda r, name: r.hset(name, "e", b"inf"),
    "unknown marker": lambda r, name: r.hset(name, "m", b"gone"),
    "pointer without target": lambda r, name: r.hset(name, "m", b"moved"),
    "foreign hash": lambda r, name: (r.delete(name), r.hset(name, "owner", "other app")),
    "another type": lambda r, name: (r.delete(name), r.set(name, b"a string")),
}


@MODES
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_an_unreadable_key_loads_as_none_with_one_warning_without_the_key(
    mode: str,
    corruption: str,
    store: RedisStore,
    raw: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = new_key()
    assert store.insert(key, record({"a": field("a", 1)}))
    CORRUPTIONS[corruption](raw, store.prefix + key)
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert twin(mode, store, "load")(key, NOW) is None
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings_) == 1
    assert key_fingerprint(key) in warnings_[0].getMessage()
    assert key not in caplog.text


@MODES
def test_foreign_keys_are_never_written(mode: str, store: RedisStore, raw: redis.Redis) -> None:
    text, hashed = new_key(), new_key()
    raw.set(store.prefix + text, b"a string")
    raw.hset(store.prefix + hashed, "owner", "other app")
    for taken in (text, hashed):
        assert twin(mode, store, "insert")(taken, record({"x": b"1"})) is False
        assert twin(mode, store, "update")(taken, change(set={"x": b"1"}), NOW) is False
        assert twin(mode, store, "delete")(taken, NOW, NOW + 60) is False
        assert twin(mode, store, "rotate")(taken, new_key(), record(), NOW, NOW + 60) is False
        assert twin(mode, store, "renew")(taken, new_key(), NOW, NOW + 30) is False
    assert raw.get(store.prefix + text) == b"a string"
    assert raw.hgetall(store.prefix + hashed) == {b"owner": b"other app"}


# -- clear_expired and delete_all ------------------------------------------------------------


@MODES
def test_clear_expired_removes_records_that_lost_their_ttl(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    dead, live = new_key(), new_key()
    assert store.insert(dead, record({"a": b"1"}, expires_in=60))
    assert store.insert(live, record({"a": b"1"}, expires_in=HOUR))
    raw.persist(store.prefix + dead)
    raw.persist(store.prefix + live)
    clear = twin(mode, store, "clear_expired")
    assert clear(NOW + 120) == 1
    assert raw.exists(store.prefix + dead) == 0
    assert isinstance(store.load(live, NOW + 120), Record)
    assert clear(NOW + 120) == 0


@MODES
def test_clear_expired_removes_every_dead_record_across_batches(
    mode: str, store: RedisStore, raw: redis.Redis
) -> None:
    doomed = [new_key() for _ in range(1_200)]  # more than one scan batch of 500
    live = new_key()
    pipe = raw.pipeline(transaction=False)
    for key in doomed:
        pipe.hset(store.prefix + key, mapping={"c": repr(NOW), "e": repr(NOW + 60)})
    pipe.execute()
    assert store.insert(live, record({"a": b"1"}, expires_in=HOUR))
    assert twin(mode, store, "clear_expired")(NOW + 120) == len(doomed)
    assert sum(raw.exists(store.prefix + key) for key in doomed) == 0
    assert isinstance(store.load(live, NOW + 120), Record)


def test_delete_all_stays_inside_its_prefix(raw: redis.Redis) -> None:
    base = unique("swtest")
    awkward = RedisStore(REDIS_URL, prefix=base + "*[a]:")
    neighbour = RedisStore(REDIS_URL, prefix=base + "zzza:")  # "*[a]:*" unescaped matches it
    try:
        for index in range(1200):
            assert awkward.insert(f"k{index}", record(user="u"))
        assert neighbour.insert("n", record())
        assert awkward.delete_all() == 1201  # the sessions and the user's index
        assert isinstance(neighbour.load("n", NOW), Record)
    finally:
        neighbour.delete_all()
        awkward.close()
        neighbour.close()


# -- clients ---------------------------------------------------------------------------------


def test_a_ready_client_serves_sync_and_async_and_stays_open(raw: redis.Redis) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    store = RedisStore(client=client, prefix=unique("swtest") + ":")
    try:
        key = new_key()
        assert store.insert(key, record({"a": b"1"}))
        assert asyncio.run(store.aupdate(key, change(set={"b": b"2"}), NOW)) is True
        loaded = asyncio.run(store.aload(key, NOW))
        assert isinstance(loaded, Record)
        assert dict(loaded.fields) == {"a": b"1", "b": b"2"}
        store.close()
        assert client.ping()  # the store does not close a client it was given
    finally:
        store.delete_all()
        client.close()


def test_a_ready_async_client_is_used_as_given() -> None:
    require_server("redis")
    prefix = unique("swtest") + ":"

    async def run() -> Record | Stale | Moved | None:
        aclient = redis.asyncio.Redis.from_url(REDIS_URL)
        store = RedisStore(REDIS_URL, async_client=aclient, prefix=prefix)
        key = new_key()
        try:
            with CommandLog(prefix) as log:
                assert await store.ainsert(key, record({"a": b"1"}))
            assert set(log.commands) == {"EVALSHA"}
            return await store.aload(key, NOW)
        finally:
            store.delete_all()
            await store.aclose()
            await aclient.aclose()

    loaded = asyncio.run(run())
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == {"a": b"1"}


@pytest.mark.parametrize("option", ["client", "async_client"])
def test_a_decoding_client_is_refused_at_construction(option: str) -> None:
    made: Any = (redis.Redis if option == "client" else redis.asyncio.Redis).from_url(
        REDIS_URL, decode_responses=True
    )
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(**{option: made})


@pytest.mark.parametrize(
    ("option", "make"),
    [
        ("client", object),
        ("client", redis.asyncio.Redis),  # an async client in the sync slot
        ("async_client", redis.Redis),
        ("async_client", lambda: REDIS_URL),
    ],
)
def test_anything_but_a_redis_client_is_refused_at_construction(
    option: str, make: Callable[[], Any]
) -> None:
    with pytest.raises(TypeError, match=f"{option}= must be a redis"):
        RedisStore(**{option: make()})


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


def test_the_timeout_is_the_clients_socket_timeout(store: RedisStore) -> None:
    quick = RedisStore(REDIS_URL, prefix=store.prefix, timeout=0.25)

    async def async_options() -> dict[str, Any]:
        io = await quick._aio()
        assert io is not None
        options: dict[str, Any] = io.client.get_connection_kwargs()
        return options

    try:
        for options in (quick._sync.client.get_connection_kwargs(), asyncio.run(async_options())):
            assert options["socket_timeout"] == 0.25
            assert options["socket_connect_timeout"] == 0.25
    finally:
        quick.close()


def test_async_twins_do_not_hop_to_a_thread(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyio.to_thread

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("RedisStore hopped to a thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)

    async def run() -> None:
        key, rotated, renewed = new_key(), new_key(), new_key()
        assert await store.ainsert(key, record({"a": b"1"}, user="u"))
        assert await store.aupdate(key, change(set={"b": b"2"}), NOW) is True
        assert isinstance(await store.aload(key, NOW), Record)
        assert await store.arotate(key, rotated, record(user="u"), NOW, NOW + 60) is True
        assert await store.arenew(rotated, renewed, NOW, NOW + 30) is True
        (info,) = await store.auser_sessions("u", NOW)
        assert await store.arevoke_session("u", info.id, NOW) is True
        assert await store.arevoke_user("u", None, NOW) == 0
        assert await store.adelete(new_key(), NOW, NOW + 60) is False
        assert await store.aclear_expired(NOW) == 0

    asyncio.run(run())


def test_one_store_serves_event_loops_in_turn_and_closes_their_clients(
    store: RedisStore,
) -> None:
    key = new_key()
    assert store.insert(key, record({"n": b"0"}))

    async def bump(n: int) -> Record | Stale | Moved | None:
        await asyncio.gather(
            *(store.aupdate(key, change(set={f"k{n}_{i}": b"1"}), NOW) for i in range(5))
        )
        return await store.aload(key, NOW)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(3):
            loaded = asyncio.run(bump(n))
            assert isinstance(loaded, Record)
            assert len(loaded.fields) == 1 + 5 * (n + 1)
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


# -- outages ---------------------------------------------------------------------------------

OPERATIONS: dict[str, Callable[[str], tuple[Any, ...]]] = {
    "load": lambda key: (key, NOW),
    "insert": lambda key: (key, record({"a": b"1"})),
    "update": lambda key: (key, change(set={"a": b"1"}), NOW),
    "delete": lambda key: (key, NOW, NOW + 60),
    "rotate": lambda key: (key, new_key(), record(), NOW, NOW + 60),
    "renew": lambda key: (key, new_key(), NOW, NOW + 30),
    "clear_expired": lambda key: (NOW,),
    "user_sessions": lambda key: ("u", NOW),
    "revoke_session": lambda key: ("u", "id", NOW),
    "revoke_user": lambda key: ("u", None, NOW),
}


@MODES
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_server_that_is_down_gives_session_store_error(mode: str, name: str) -> None:
    store = RedisStore(CLOSED_URL, prefix="swtest:", timeout=1.0)  # constructing never connects
    key = new_key()
    with pytest.raises(SessionStoreError, match=f"Redis session store failed in {name}") as failed:
        twin(mode, store, name)(*OPERATIONS[name](key))
    assert isinstance(failed.value.__cause__, redis.ConnectionError)
    assert key not in str(failed.value)
    store.close()


@MODES
def test_a_server_that_never_answers_times_out_with_session_store_error(mode: str) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never replies
    port = silent.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix="swtest:", timeout=0.2)
    try:
        with pytest.raises(SessionStoreError, match="TimeoutError") as failed:
            twin(mode, store, "load")(new_key(), NOW)
        assert isinstance(failed.value.__cause__, redis.TimeoutError)
    finally:
        store.close()
        silent.close()
