"""RedisStore on a real Redis Cluster and a real Sentinel set, started from redis-server
(``tests.redis_topologies``): the conformance kit through each, where a session's data
lives, writes that wait for replicas, and failovers that lose no acknowledged write."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import redis
from redis.crc import key_slot

from sessionware._errors import SessionStoreError
from sessionware._keys import info_id, new_key
from sessionware._records import Record
from sessionware.stores import RedisStore
from sessionware.stores.base import SessionStore
from sessionware.testing.conformance import StoreConformance
from tests.redis_topologies import ClusterSet, Node, SentinelSet
from tests.servers import redis_topology
from tests.stores.factories import unique
from tests.stores.test_redis import NOW, change, field, record

pytestmark = [pytest.mark.redis, pytest.mark.cluster]

#: Short, so that the writes meant to fail fail quickly.
WAIT_TIMEOUT = 0.3
#: For the writes that must succeed: replicas of a loaded machine (a parallel test run)
#: can take longer than ``WAIT_TIMEOUT`` to acknowledge.
PATIENT = 3.0


@contextmanager
def made(
    url: str, wait_replicas: int = 0, wait_timeout: float = WAIT_TIMEOUT
) -> Iterator[RedisStore]:
    """A store of its own prefix on ``url``, emptied and closed on exit."""
    store = RedisStore(
        url, prefix=unique("swtest") + ":", wait_replicas=wait_replicas, wait_timeout=wait_timeout
    )
    try:
        yield store
    finally:
        store.delete_all()
        store.close()


class TestOnCluster(StoreConformance):
    """The whole contract through a 3-master cluster, with and without waiting for replicas
    (each session write then goes straight to its slot's master with a WAIT)."""

    @pytest.fixture(params=[0, 1], ids=["no-wait", "wait-1"])
    def store(
        self, request: pytest.FixtureRequest, redis_cluster: ClusterSet
    ) -> Iterator[SessionStore]:
        with made(redis_cluster.url, request.param, PATIENT) as store:
            yield store


class TestOnSentinel(StoreConformance):
    """The whole contract through the master the sentinels name, waiting for both replicas."""

    @pytest.fixture
    def store(self, redis_sentinel: SentinelSet) -> Iterator[SessionStore]:
        with made(redis_sentinel.url, 2, PATIENT) as store:
            yield store


# -- where a session lives --------------------------------------------------------------------


def _holder(cluster: ClusterSet, name: str) -> Node:
    """The master that serves ``name``'s hash slot, as the cluster says."""
    slot = key_slot(name.encode())
    with cluster.masters_now()[0].client() as client:
        for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return cluster.node_at(f"{master[0]}:{master[1]}")
    raise AssertionError(f"no master serves slot {slot}")


def test_each_session_is_one_hash_on_one_master_and_its_replica(redis_cluster: ClusterSet) -> None:
    with made(redis_cluster.url, wait_replicas=1, wait_timeout=PATIENT) as store:
        keys = [new_key() for _ in range(24)]
        for index, key in enumerate(keys):
            assert store.insert(key, record({"n": field("n", index)}, user=f"u{index % 3}"))
            assert store.update(key, change(set={"m": field("m", index)}), NOW) is True
        renewed = new_key()
        assert store.renew(keys[0], renewed, NOW, NOW + 30) is True
        holders: set[str] = set()
        for key in [*keys[1:], renewed]:
            name = store.prefix + key
            master = _holder(redis_cluster, name)
            holders.add(master.name)
            replica = redis_cluster.replica_of(master)
            with master.client() as on_master, replica.client() as on_replica:
                # WAIT made the replica acknowledge the write before it returned
                on_replica.execute_command("READONLY")
                stored = on_master.hgetall(name)
                assert stored
                assert on_replica.hgetall(name) == stored
                assert on_master.type(name) == "hash"
            others = [m for m in redis_cluster.masters_now() if m is not master]
            for other in others:
                with other.client() as client, pytest.raises(redis.exceptions.MovedError):
                    client.hgetall(name)
        assert len(holders) == 3  # the sessions really are spread over every master


def test_a_store_url_with_prefix_and_wait_options_works_on_both(
    redis_cluster: ClusterSet, redis_sentinel: SentinelSet
) -> None:
    from sessionware.stores._urls import store_from_url

    for url in (redis_cluster.url, redis_sentinel.url):
        prefix = unique("swurl") + ":"
        store = store_from_url(f"{url}?prefix={prefix}&wait_replicas=1&wait_timeout=0.5")
        assert isinstance(store, RedisStore)
        try:
            assert store.prefix == prefix
            key = new_key()
            assert store.insert(key, record({"a": field("a", 1)}))
            assert isinstance(asyncio.run(store.aload(key, NOW)), Record)
        finally:
            store.delete_all()
            store.close()


def test_check_names_the_topology_and_counts_the_sessions(
    redis_cluster: ClusterSet, redis_sentinel: SentinelSet
) -> None:
    from sessionware.stores._urls import store_from_url

    for url, where in (
        (redis_cluster.url, "a cluster of 3 primaries"),
        (redis_sentinel.url, "(master of "),
    ):
        prefix = unique("swcheck") + ":"
        store = store_from_url(f"{url}?prefix={prefix}")
        assert isinstance(store, RedisStore)
        try:
            for _ in range(3):  # spread over the masters of the cluster
                assert store.insert(new_key(), record({"a": field("a", 1)}))
            rows = dict(store.check())
            assert where in rows["server"]
            assert rows["sessions"] == "3 live"
            assert rows["keys"].startswith("3 under prefix")
        finally:
            store.delete_all()
            store.close()


# -- many writers at once ---------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_two_clients_x_100_writers_on_one_session_keep_every_key(
    topology: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"redis_{topology}").url
    key = new_key()
    with made(url, wait_replicas=1, wait_timeout=PATIENT) as first:
        second = RedisStore(url, prefix=first.prefix, wait_replicas=1, wait_timeout=PATIENT)
        stores = (first, second)
        assert first.insert(key, record({"start": field("start", 0)}))

        def write(job: tuple[int, int]) -> object:
            which, index = job
            return stores[which].update(key, change(set={f"w{which}-{index}": b"1"}), NOW)

        jobs = [(which, index) for index in range(100) for which in (0, 1)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(write, jobs))
        second.close()
        assert results == [True] * len(jobs)
        loaded = first.load(key, NOW)
        assert isinstance(loaded, Record)
        assert set(loaded.fields) == {"start", *(f"w{w}-{i}" for w, i in jobs)}


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_a_fresh_event_loop_takes_200_writes_at_once(
    topology: str, request: pytest.FixtureRequest
) -> None:
    """The first operations of a loop's client all at once (a server's first requests):
    none of them may fail while the client is still reading the cluster's layout."""
    url = request.getfixturevalue(f"redis_{topology}").url
    key = new_key()
    with made(url) as store:
        assert store.insert(key, record())

        async def burst() -> list[object]:
            writes = [store.aupdate(key, change(set={f"k{i}": b"1"}), NOW) for i in range(200)]
            return await asyncio.gather(*writes, return_exceptions=True)

        assert asyncio.run(burst()) == [True] * 200
        loaded = store.load(key, NOW)
        assert isinstance(loaded, Record)
        assert len(loaded.fields) == 200


# -- waiting for replicas --------------------------------------------------------------------


def test_a_write_no_replica_acknowledges_is_an_error_not_a_success(
    redis_cluster: ClusterSet,
) -> None:
    with made(redis_cluster.url, wait_replicas=1) as durable:
        hasty = RedisStore(redis_cluster.url, prefix=durable.prefix)
        key, other = new_key(), new_key()
        assert durable.insert(key, record({"a": field("a", 1)}))
        assert hasty.load(other, NOW) is None  # both clients know the cluster's layout now
        replica = redis_cluster.replica_of(_holder(redis_cluster, durable.prefix + key))

        async def frozen_replica() -> None:
            assert await durable.aload(key, NOW) is not None  # this loop's client, ready
            replica.freeze()
            with pytest.raises(SessionStoreError, match="0 of 1 replica"):
                durable.update(key, change(set={"b": field("b", 2)}), NOW)
            with pytest.raises(SessionStoreError, match="0 of 1 replica"):
                await durable.aupdate(key, change(set={"c": field("c", 3)}), NOW)
            assert hasty.insert(other, record()) is True  # without waiting: "done"

        try:
            asyncio.run(frozen_replica())
        finally:
            replica.thaw()
            hasty.close()
        redis_cluster.wait_healthy()


def test_sentinel_a_write_fewer_replicas_acknowledge_is_an_error(
    redis_sentinel: SentinelSet,
) -> None:
    with made(redis_sentinel.url, wait_replicas=2) as durable:
        key = new_key()
        assert durable.insert(key, record({"a": field("a", 1)}))
        replica = next(node for node in redis_sentinel.data if node is not redis_sentinel.master())
        replica.freeze()
        try:
            with pytest.raises(SessionStoreError, match="1 of 2 replica"):
                durable.update(key, change(set={"b": field("b", 2)}), NOW)
        finally:
            replica.thaw()
        redis_sentinel.wait_healthy()


# -- failovers: a master SIGKILLed -----------------------------------------------------------


def _write_sessions(store: RedisStore, count: int) -> dict[str, dict[str, bytes]]:
    """``count`` sessions, each inserted then changed, half of them from asyncio; what
    each should hold (every write acknowledged)."""
    expected: dict[str, dict[str, bytes]] = {}

    async def changes(keys: list[str]) -> None:
        for key in keys:
            assert await store.aupdate(key, change(set={"async": b"1"}), NOW) is True
            expected[key]["async"] = b"1"

    for index in range(count):
        key = new_key()
        assert store.insert(key, record({"n": field("n", index)}, user="failover"))
        assert store.update(key, change(set={"m": field("m", index)}), NOW) is True
        expected[key] = {"n": field("n", index), "m": field("m", index)}
    asyncio.run(changes(list(expected)[::2]))
    return expected


def _lost(store: RedisStore, expected: dict[str, dict[str, bytes]]) -> list[str]:
    lost = []
    for key, fields in expected.items():
        loaded = store.load(key, time.time())
        if not isinstance(loaded, Record) or dict(loaded.fields) != fields:
            lost.append(key)
    return lost


def _listed(store: RedisStore, expected: dict[str, dict[str, bytes]]) -> bool:
    """Whether the user's index lists every acknowledged session (a refused write may be
    there too: a 503 says "not acknowledged", not "not written")."""
    listed = {info.id for info in store.user_sessions("failover", time.time())}
    return {info_id(key) for key in expected} <= listed


@contextmanager
def two_stores(url: str, prefix: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two stores waiting for one replica on one prefix: one patient enough for a loaded
    machine (for the writes that must succeed), one that gives up fast (for the writes
    that must fail)."""
    patient = RedisStore(url, prefix=prefix, wait_replicas=1, wait_timeout=PATIENT)
    impatient = RedisStore(url, prefix=prefix, wait_replicas=1, wait_timeout=WAIT_TIMEOUT)
    try:
        yield patient, impatient
    finally:
        patient.close()
        impatient.close()


def _refused(store: RedisStore) -> None:
    """Writes that no replica can acknowledge now: each must fail, none be acknowledged."""
    for _ in range(3):
        with pytest.raises(SessionStoreError, match="replica"):
            store.insert(new_key(), record(user="failover"))


def test_cluster_master_killed_loses_no_acknowledged_write() -> None:
    with (
        redis_topology(ClusterSet) as cluster,
        two_stores(
            cluster.url,
            "swfail{one}:",  # one hash tag: every session on the master killed below
        ) as (store, impatient),
    ):
        expected = _write_sessions(store, 30)
        master = _holder(cluster, "swfail{one}:x")
        replica = cluster.replica_of(master)
        replica.freeze()  # from here no write reaches a replica
        _refused(impatient)
        master.kill()
        replica.thaw()
        assert cluster.wait_promoted(replica) is not master
        assert _lost(store, expected) == []
        assert _listed(store, expected)  # the index too
        cluster.bring_back(master)  # the new master has a replica again: writes resume
        assert store.insert(new_key(), record()) is True


def test_sentinel_master_killed_loses_no_acknowledged_write() -> None:
    with (
        redis_topology(SentinelSet) as sentinels,
        two_stores(sentinels.url, unique("swfail") + ":") as (store, impatient),
    ):
        expected = _write_sessions(store, 30)
        old = sentinels.master()
        replicas = [node for node in sentinels.data if node is not old]
        for replica in replicas:
            replica.freeze()
        _refused(impatient)
        old.kill()
        for replica in replicas:
            replica.thaw()
        assert sentinels.wait_promoted(old) is not old
        assert _lost(store, expected) == []
        assert _listed(store, expected)
        assert asyncio.run(store.ainsert(new_key(), record())) is True  # one replica is left
