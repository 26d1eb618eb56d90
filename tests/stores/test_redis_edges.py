"""RedisStore at its edges, on real servers: every async twin under trio (a thread hop),
scripts a fresh server has never seen in an async sweep, a server whose ACL refuses a
read, and what ``check`` reports of odd keys and of a Unix socket."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from sessionware._errors import SessionStoreError
from sessionware._keys import info_id, new_key
from sessionware._records import Moved, Record, Stale
from sessionware.stores import RedisStore
from sessionware.testing.conformance import change, field, live, record
from tests.servers import REDIS_URL, PrivateRedis, free_port, require_redis_server, require_server
from tests.stores.factories import unique

pytestmark = pytest.mark.redis

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
HOUR = 3600.0


@pytest.fixture
def store() -> Iterator[RedisStore]:
    require_server("redis")
    made = RedisStore(REDIS_URL, prefix=unique("swtest") + ":")
    yield made
    made.delete_all()
    made.close()


def test_every_async_twin_works_under_trio_through_a_thread(store: RedisStore) -> None:
    trio = pytest.importorskip("trio")
    now = time.time()
    key, rotated, renewed, other, dead = (new_key() for _ in range(5))

    async def use() -> None:
        assert await store.ainsert(key, record({"a": field("a", "1")}, now=now, user="u"))
        assert await store.aupdate(key, change(now, set={"b": field("b", "2")}), now) is True
        assert set(live(await store.aload(key, now)).fields) == {"a", "b"}
        assert await store.arotate(key, rotated, record(now=now, user="u"), now, now + 60)
        assert isinstance(await store.aload(key, now), Stale)
        assert await store.arenew(rotated, renewed, now, now + 30) is True
        assert await store.aload(rotated, now) == Moved(renewed, now + 30)
        assert await store.ainsert(other, record(now=now, user="u"))
        infos = await store.auser_sessions("u", now)
        assert {info.id for info in infos} == {info_id(renewed), info_id(other)}
        assert await store.arevoke_session("u", info_id(other), now) is True
        assert await store.arevoke_user("u", None, now) == 1
        assert isinstance(await store.aload(renewed, now), Stale)
        assert await store.ainsert(dead, record(now=now, ttl=60))
        assert await store.adelete(dead, now, now + 10) is True
        assert await store.acount_expired(now + HOUR) >= 1
        heard: list[int] = []
        assert await store.aclear_expired(now + HOUR, heard.append) >= 1
        assert heard[-1] >= 1
        assert await store.acount_expired(now + HOUR) == 0

    trio.run(use)


def test_an_async_sweep_loads_its_script_on_a_server_that_never_saw_it(
    private_redis: PrivateRedis,
) -> None:
    store = RedisStore(private_redis.url, prefix="swtest:")
    now = time.time()
    keys = [new_key() for _ in range(3)]
    try:
        for key in keys:
            assert store.insert(key, record(now=now, ttl=60))
        assert store.insert(new_key(), record(now=now, ttl=HOUR))

        async def sweep() -> int:
            try:
                return await store.aclear_expired(now + 120)
            finally:
                await store.aclose()

        assert asyncio.run(sweep()) == len(keys)  # NOSCRIPT first: loaded, run again
        assert all(store.load(key, now) is None for key in keys)
        assert private_redis.dbsize() == 1
    finally:
        store.close()


@MODES
def test_a_read_the_servers_acl_refuses_is_a_store_error_not_an_absent_session(
    mode: str, private_redis: PrivateRedis
) -> None:
    private_redis.command(
        "ACL", "SETUSER", "reader", "on", ">secret", "~*", "&*", "+@all", "-hgetall"
    )
    url = f"redis://reader:secret@127.0.0.1:{private_redis.port}/0"
    store = RedisStore(url, prefix="swtest:")
    now, key = time.time(), new_key()

    async def aload() -> object:
        try:
            return await store.aload(key, now)
        finally:
            await store.aclose()

    try:
        assert store.insert(key, record(now=now))
        with pytest.raises(SessionStoreError, match=r"failed in load: .*hgetall"):
            store.load(key, now) if mode == "sync" else asyncio.run(aload())
    finally:
        store.close()


def test_check_counts_a_hash_with_an_unreadable_expiry_as_a_key_not_a_session(
    store: RedisStore,
) -> None:
    raw = redis.Redis.from_url(REDIS_URL)
    now = time.time()
    try:
        assert store.insert(new_key(), record(now=now))
        raw.hset(store.prefix + "odd", mapping={"e": "soon", "d": "{}"})
        findings = dict(store.check())
        assert findings["keys"].startswith("2 under prefix")
        assert findings["sessions"] == "1 live"
    finally:
        raw.close()


@pytest.fixture
def socket_redis(tmp_path: Path) -> Iterator[Path]:
    """A private ``redis-server`` that also listens on a Unix socket."""
    path, port = tmp_path / "redis.sock", free_port()
    process = subprocess.Popen(
        [
            *(require_redis_server(), "--port", str(port), "--bind", "127.0.0.1"),
            *("--unixsocket", str(path), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(unix_socket_path=str(path))
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, OSError):
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("a private redis-server on a Unix socket did not start")
                time.sleep(0.02)
        client.close()
        yield path
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_store_on_a_unix_socket_says_so_in_its_check(socket_redis: Path) -> None:
    store = RedisStore(f"unix://{socket_redis}?db=2", prefix="swtest:")
    now, key = time.time(), new_key()
    try:
        assert store.insert(key, record(now=now))
        assert isinstance(store.load(key, now), Record)
        findings = dict(store.check())
        assert findings["server"].endswith(f"at unix socket {socket_redis}, db 2")
        assert findings["sessions"] == "1 live"
    finally:
        store.close()


def test_every_sync_method_maps_an_unreachable_cluster_to_a_store_error() -> None:
    """A cluster client connects as it is built: that failure is an outage (503), never a
    raw driver exception (500), whichever method builds it first."""
    now = time.time()
    calls: dict[str, Callable[[RedisStore], object]] = {
        "rotate": lambda s: s.rotate(new_key(), new_key(), record({}, now=now), now, now + 60),
        "clear_expired": lambda s: s.clear_expired(now),
        "count_expired": lambda s: s.count_expired(now),
        "user_sessions": lambda s: s.user_sessions("u", now),
        "revoke_session": lambda s: s.revoke_session("u", "id", now),
        "revoke_user": lambda s: s.revoke_user("u", now=now),
        "delete_all": lambda s: s.delete_all(),
    }
    for name, call in calls.items():
        store = RedisStore(f"redis+cluster://127.0.0.1:{free_port()}/", timeout=0.5)
        try:
            with pytest.raises(SessionStoreError, match=f"failed in {name}"):
                call(store)
        finally:
            store.close()
