"""Writes that wait for replicas (``_redis_wait``) where the server does not go along: a
reply or a ``WAIT`` the server refuses, and, on a real Redis Cluster, a slot map that is out
of date, a master that cannot be reached, a slot that keeps moving, a reply that is lost.

The cluster cases steer one client of the test's own: its slot map is pointed elsewhere
(as after a resharding or a failover it has not heard of), and the real servers answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster

from sessionware._errors import SessionStoreError
from sessionware._keys import new_key
from sessionware.stores import RedisStore
from sessionware.stores._redis_scripts import Script
from sessionware.stores._redis_wait import (
    ReplicationShortfall,
    Wait,
    acluster_eval_waiting,
    cluster_eval_waiting,
)
from sessionware.testing.conformance import change, record
from tests.redis_nodes import PASSWORD
from tests.redis_topologies import ClusterSet
from tests.servers import PrivateRedis, free_port
from tests.stores.test_redis_replicas import CuttingProxy

pytestmark = pytest.mark.redis

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
WAIT = Wait(1, 0.5)  # every master of the test cluster has one replica


def fresh_script() -> Script:
    """A script no server has seen yet (its SHA is new): the first call meets NOSCRIPT."""
    body = b"-- " + uuid.uuid4().hex.encode() + b"\nreturn redis.call('SET', KEYS[1], ARGV[1])"
    return Script("set", body)


# -- what WAIT's reply means ------------------------------------------------------------------


def test_wait_asks_for_whole_milliseconds_and_never_for_zero() -> None:
    assert Wait(2, 0.25).command == ("WAIT", 2, 250)
    assert Wait(1, 0.0001).command == ("WAIT", 1, 1)  # 0 would wait forever
    assert Wait(1, 0.0015).command == ("WAIT", 1, 2)


def test_a_reply_is_returned_once_enough_replicas_acknowledged() -> None:
    assert Wait(2, 1.0).checked(b"OK", 2) == b"OK"
    assert Wait(2, 1.0).checked(b"OK", 3) == b"OK"
    with pytest.raises(ReplicationShortfall, match="1 of 2 replica"):
        Wait(2, 1.0).checked(b"OK", 1)


def test_an_error_of_the_script_or_of_wait_is_raised_as_it_is() -> None:
    failed, refused = redis.ResponseError("script failed"), redis.ResponseError("no WAIT")
    with pytest.raises(redis.ResponseError) as raised:
        Wait(1, 1.0).checked(failed, refused)
    assert raised.value is failed  # the script's own error comes first
    with pytest.raises(redis.ResponseError) as raised:
        Wait(1, 1.0).checked(b"OK", refused)
    assert raised.value is refused


# -- a server that refuses ---------------------------------------------------------------------


@MODES
def test_a_store_that_waits_for_replicas_on_a_replica_refuses_every_write(
    mode: str, private_redis: PrivateRedis
) -> None:
    private_redis.command("REPLICAOF", "127.0.0.1", str(free_port()))  # a replica, read-only
    store = RedisStore(private_redis.url, prefix="swtest:", wait_replicas=1, wait_timeout=0.1)
    now = time.time()

    async def both() -> None:
        with pytest.raises(SessionStoreError, match=r"failed in insert: .*read only replica"):
            await store.ainsert(new_key(), record(now=now))
        # a write that writes nothing (an unknown key): the script runs, WAIT is refused
        with pytest.raises(SessionStoreError, match=r"failed in update: .*WAIT cannot be used"):
            await store.aupdate(new_key(), change(now), now)
        await store.aclose()

    try:
        if mode == "async":
            asyncio.run(both())
        else:
            with pytest.raises(SessionStoreError, match=r"failed in insert: .*read only replica"):
                store.insert(new_key(), record(now=now))
            with pytest.raises(SessionStoreError, match=r"failed in update: .*WAIT cannot be"):
                store.update(new_key(), change(now), now)
        assert private_redis.dbsize() == 0
    finally:
        store.close()


# -- on a Redis Cluster ---------------------------------------------------------------------------


def _startup(cluster: ClusterSet) -> tuple[str, int]:
    node = cluster.masters_now()[0]
    return node.host, node.port


@pytest.fixture
def sync_cluster(redis_cluster: ClusterSet) -> Iterator[redis.cluster.RedisCluster]:
    host, port = _startup(redis_cluster)
    client = redis.cluster.RedisCluster(host=host, port=port, password=PASSWORD)
    yield client
    client.close()


@pytest.fixture
async def async_cluster(
    redis_cluster: ClusterSet,
) -> AsyncIterator[redis.asyncio.cluster.RedisCluster]:
    host, port = _startup(redis_cluster)
    client = redis.asyncio.cluster.RedisCluster(host=host, port=port, password=PASSWORD)
    await client.initialize()
    yield client
    await client.aclose()


def _key() -> bytes:
    return f"swtest:{uuid.uuid4().hex}".encode()


def _other_master(client: Any, slot: int) -> Any:
    """A master that does not serve ``slot``: it answers MOVED."""
    right = client.nodes_manager.slots_cache[slot][0]
    return next(node for node in client.get_primaries() if node.name != right.name)


@pytest.mark.cluster
def test_a_write_to_a_slot_that_moved_follows_it_and_reads_the_map_again(
    sync_cluster: redis.cluster.RedisCluster,
) -> None:
    key = _key()
    slot = sync_cluster.keyslot(key)  # type: ignore[no-untyped-call]
    right = sync_cluster.nodes_manager.slots_cache[slot][0].name
    sync_cluster.nodes_manager.slots_cache[slot] = [_other_master(sync_cluster, slot)]
    try:
        assert cluster_eval_waiting(sync_cluster, fresh_script(), [key], [b"v"], WAIT) == b"OK"
        assert sync_cluster.nodes_manager.slots_cache[slot][0].name == right
        assert sync_cluster.get(key) == b"v"
    finally:
        sync_cluster.delete(key)


@pytest.mark.cluster
def test_a_write_to_a_master_that_cannot_be_reached_fails_and_reads_the_map_again(
    sync_cluster: redis.cluster.RedisCluster,
) -> None:
    key = _key()
    slot = sync_cluster.keyslot(key)  # type: ignore[no-untyped-call]
    right = sync_cluster.nodes_manager.slots_cache[slot][0].name
    gone = redis.cluster.ClusterNode("127.0.0.1", free_port(), "primary")  # type: ignore[no-untyped-call]
    sync_cluster.nodes_manager.slots_cache[slot] = [gone]
    with pytest.raises(redis.ConnectionError):
        cluster_eval_waiting(sync_cluster, fresh_script(), [key], [b"v"], WAIT)
    assert sync_cluster.nodes_manager.slots_cache[slot][0].name == right
    assert sync_cluster.get(key) is None


class Misdirected(redis.cluster.RedisCluster):
    """A cluster client whose slot map always names a master that does not serve the key."""

    def get_node_from_key(self, key: Any, replica: bool = False) -> Any:
        return _other_master(self, self.keyslot(key))  # type: ignore[no-untyped-call]


class AsyncMisdirected(redis.asyncio.cluster.RedisCluster):
    def get_node_from_key(self, key: Any, replica: bool = False) -> Any:
        return _other_master(self, self.keyslot(key))


@pytest.mark.cluster
def test_a_slot_that_keeps_moving_fails_the_write(redis_cluster: ClusterSet) -> None:
    host, port = _startup(redis_cluster)
    client = Misdirected(host=host, port=port, password=PASSWORD)
    key = _key()
    try:
        with pytest.raises(redis.exceptions.ClusterError, match="kept moving"):
            cluster_eval_waiting(client, fresh_script(), [key], [b"v"], WAIT)
        assert client.get(key) is None
    finally:
        client.close()


@pytest.mark.cluster
@pytest.mark.anyio
async def test_an_async_write_to_a_slot_that_moved_follows_it(
    async_cluster: redis.asyncio.cluster.RedisCluster,
) -> None:
    key = _key()
    slot = async_cluster.keyslot(key)
    right = async_cluster.nodes_manager.slots_cache[slot][0].name
    async_cluster.nodes_manager.slots_cache[slot] = [_other_master(async_cluster, slot)]
    try:
        script = fresh_script()  # the master of the slot has not seen it either: loaded there
        assert await acluster_eval_waiting(async_cluster, script, [key], [b"v"], WAIT) == b"OK"
        assert async_cluster.nodes_manager.slots_cache[slot][0].name == right
        assert await async_cluster.get(key) == b"v"
    finally:
        await async_cluster.delete(key)


@pytest.mark.cluster
@pytest.mark.anyio
async def test_an_async_write_to_a_master_that_cannot_be_reached_fails(
    async_cluster: redis.asyncio.cluster.RedisCluster,
) -> None:
    key = _key()
    slot = async_cluster.keyslot(key)
    right = async_cluster.nodes_manager.slots_cache[slot][0].name
    gone = redis.asyncio.cluster.ClusterNode("127.0.0.1", free_port(), "primary")
    async_cluster.nodes_manager.slots_cache[slot] = [gone]
    with pytest.raises(redis.ConnectionError):
        await acluster_eval_waiting(async_cluster, fresh_script(), [key], [b"v"], WAIT)
    assert async_cluster.nodes_manager.slots_cache[slot][0].name == right
    assert await async_cluster.get(key) is None


@pytest.mark.cluster
@pytest.mark.anyio
async def test_an_async_write_whose_reply_is_lost_fails_and_reads_the_map_again(
    async_cluster: redis.asyncio.cluster.RedisCluster,
) -> None:
    key = _key()
    slot = async_cluster.keyslot(key)
    right = async_cluster.nodes_manager.slots_cache[slot][0]
    proxy = CuttingProxy(int(right.port))
    through = redis.asyncio.cluster.ClusterNode(
        "127.0.0.1", proxy.port, "primary", password=PASSWORD
    )
    script = fresh_script()
    try:
        async_cluster.nodes_manager.slots_cache[slot] = [through]
        assert await acluster_eval_waiting(async_cluster, script, [key], [b"1"], WAIT) == b"OK"
        proxy.cut_next_reply.set()  # the next write runs, and its reply never comes back
        with pytest.raises(redis.ConnectionError):
            await acluster_eval_waiting(async_cluster, script, [key], [b"2"], WAIT)
        assert async_cluster.nodes_manager.slots_cache[slot][0].name == right.name
        assert await async_cluster.get(key) == b"2"  # it ran: the caller must not be told so
    finally:
        await through.disconnect()
        proxy.close()
        await async_cluster.delete(key)


@pytest.mark.cluster
@pytest.mark.anyio
async def test_an_async_slot_that_keeps_moving_fails_the_write(redis_cluster: ClusterSet) -> None:
    host, port = _startup(redis_cluster)
    client = AsyncMisdirected(host=host, port=port, password=PASSWORD)
    key = _key()
    try:
        with pytest.raises(redis.exceptions.ClusterError, match="kept moving"):
            await acluster_eval_waiting(client, fresh_script(), [key], [b"v"], WAIT)
        assert await client.get(key) is None
    finally:
        await client.aclose()
