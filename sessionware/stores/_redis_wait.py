"""Writes that wait for replicas: each script call and a ``WAIT`` in one round trip.

``WAIT n ms`` answers how many replicas acknowledged every write made *on the same
connection* so far, so it must follow the script on the connection that ran it (and it
may not run inside a script): a pipeline of the two does that in one round trip. Under
Redis Cluster the pipeline goes straight to the master of the key's slot (a cluster
pipeline would send a keyless ``WAIT`` elsewhere, and re-send a script whose reply was
lost); a ``MOVED`` reply (the server ran nothing) refreshes the slot map and retries.

A write that fewer than ``replicas`` replicas acknowledged within the timeout raises
``ReplicationShortfall``: the master has it, a failover may lose it, and the caller must
not be told it is safe.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
from redis.asyncio.cluster import PipelineCommand
from redis.exceptions import MovedError, NoScriptError

from ._redis_layout import Arg

if TYPE_CHECKING:
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    from ._redis_scripts import Script

#: How many times a write follows a slot that moved before it gives up.
_REDIRECTS = 3


class ReplicationShortfall(redis.RedisError):
    """Fewer replicas than asked acknowledged a write in time (the master has it)."""


@dataclass(frozen=True, slots=True)
class Wait:
    """Wait for ``replicas`` replicas, at most ``timeout`` seconds, after every write."""

    replicas: int
    timeout: float

    @property
    def command(self) -> tuple[str, int, int]:
        # WAIT's timeout is in milliseconds, and 0 would mean "forever".
        return ("WAIT", self.replicas, max(1, math.ceil(self.timeout * 1000)))

    def checked(self, reply: Any, acked: Any) -> Any:
        """The script's reply once ``acked`` (WAIT's reply) is enough; errors raise."""
        if isinstance(reply, Exception):
            raise reply
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < self.replicas:
            raise ReplicationShortfall(
                f"{acked} of {self.replicas} replica(s) acknowledged the write "
                f"within {self.timeout:g} s"
            )
        return reply


def _call(script: Script, keys: list[bytes], args: list[Arg]) -> tuple[Any, ...]:
    return ("EVALSHA", script.sha, len(keys), *keys, *args)


def eval_waiting(
    client: redis.Redis, script: Script, keys: list[bytes], args: list[Arg], wait: Wait
) -> Any:
    """Run ``script`` and ``WAIT`` on one connection of a one-server (or Sentinel) client."""
    return eval_each_waiting(client, script, [(keys, args)], wait)[0]


def eval_each_waiting(
    client: redis.Redis,
    script: Script,
    calls: list[tuple[list[bytes], list[Arg]]],
    wait: Wait,
) -> list[Any]:
    """Many calls of ``script`` and one ``WAIT`` after them, pipelined on one connection."""
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(*wait.command[1:])
        *replies, acked = pipe.execute(raise_on_error=False)
        if attempt == 1 and any(isinstance(reply, NoScriptError) for reply in replies):
            client.script_load(script.source)  # refused, so none of them ran: load, run
            continue
        return [wait.checked(reply, acked) for reply in replies]
    raise AssertionError("unreachable")


def cluster_eval_waiting(
    cluster: RedisCluster, script: Script, keys: list[bytes], args: list[Arg], wait: Wait
) -> Any:
    """``eval_waiting`` on the master that holds ``keys[0]``'s slot."""
    for _ in range(_REDIRECTS):
        node = cluster.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
        try:
            return eval_waiting(cluster.get_redis_connection(node), script, keys, args, wait)
        except MovedError:
            _refresh(cluster)
        except (redis.ConnectionError, redis.TimeoutError):
            _refresh(cluster)  # so that the next request finds a promoted replica
            raise
    raise redis.exceptions.ClusterError("the session's hash slot kept moving")


# What a slot-map refresh may raise when no node answers (the cluster's own exception is
# not a RedisError).
_UNREACHABLE = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


def _refresh(cluster: RedisCluster) -> None:
    # A cluster that cannot be read now fails the write that follows, or has failed it.
    with contextlib.suppress(*_UNREACHABLE):
        cluster.nodes_manager.initialize()


async def aeval_waiting(
    client: redis.asyncio.Redis, script: Script, keys: list[bytes], args: list[Arg], wait: Wait
) -> Any:
    return (await aeval_each_waiting(client, script, [(keys, args)], wait))[0]


async def aeval_each_waiting(
    client: redis.asyncio.Redis,
    script: Script,
    calls: list[tuple[list[bytes], list[Arg]]],
    wait: Wait,
) -> list[Any]:
    for attempt in (1, 2):
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(*wait.command[1:])
        *replies, acked = await pipe.execute(raise_on_error=False)
        if attempt == 1 and any(isinstance(reply, NoScriptError) for reply in replies):
            await client.script_load(script.source)
            continue
        return [wait.checked(reply, acked) for reply in replies]
    raise AssertionError("unreachable")


async def acluster_eval_waiting(
    cluster: AsyncRedisCluster, script: Script, keys: list[bytes], args: list[Arg], wait: Wait
) -> Any:
    await cluster.initialize()  # a no-op once the slot map is known
    loaded = False
    for _ in range(_REDIRECTS):
        node = cluster.get_node_from_key(keys[0])  # type: ignore[arg-type]  # bytes work
        if node is None:  # no master for the slot now (a failover under way)
            raise redis.exceptions.SlotNotCoveredError("no master serves the session's slot")
        commands = [
            PipelineCommand(0, *_call(script, keys, args)),
            PipelineCommand(1, *wait.command),
        ]
        try:
            await node.execute_pipeline(commands)
        except (redis.ConnectionError, redis.TimeoutError):
            await _arefresh(cluster)
            raise
        reply, acked = commands[0].result, commands[1].result
        if isinstance(reply, NoScriptError) and not loaded:
            await node.execute_command("SCRIPT", "LOAD", script.source)
            loaded = True
            continue
        if isinstance(reply, MovedError):
            await _arefresh(cluster)
            continue
        if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
            await _arefresh(cluster)
        return wait.checked(reply, acked)
    raise redis.exceptions.ClusterError("the session's hash slot kept moving")


async def _arefresh(cluster: AsyncRedisCluster) -> None:
    with contextlib.suppress(*_UNREACHABLE):
        await cluster.nodes_manager.initialize()
