"""The two drivers of RedisStore's flows: one over a sync client, one over an async client.

Scripts are called by SHA (``EVALSHA``); a server that does not know one yet (first use,
a restart, a new cluster node) gets it loaded once and the call is repeated (the server
refused it: it ran nothing). With ``wait`` set, every script call also waits for
replicas, in the same round trip (``_redis_wait``).

A step is tried a second time only when its first try never left (``_redis_failures``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import redis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from .._flow import adrive, drive
from . import _redis_wait as waiting
from ._deadlines import Deadlines
from ._redis_failures import connection_failures, unsent
from ._redis_flows import Eval, EvalEach, Flow, Flows, Load, Members, Metas, Step
from ._redis_layout import Arg
from ._redis_scripts import Script

if TYPE_CHECKING:
    import redis.asyncio

    SyncClient = redis.Redis | RedisCluster
    AsyncClient = redis.asyncio.Redis | AsyncRedisCluster

T = TypeVar("T")

SCAN_COUNT = 500


class SyncIO:
    """Runs flows on a sync client (``redis.Redis`` or ``RedisCluster``)."""

    __slots__ = ("client", "flows", "wait")

    def __init__(self, client: SyncClient, flows: Flows, wait: waiting.Wait | None) -> None:
        self.client = client
        self.flows = flows
        self.wait = wait

    def run(self, flow: Flow[T]) -> T:
        return drive(flow, self.perform)

    def perform(self, step: Step) -> Any:
        """Perform one step; a second time only if the first never left (``unsent``)."""
        try:
            with connection_failures():
                return self._perform(step)
        except redis.ConnectionError as exc:
            if not unsent(exc):
                raise
        with connection_failures():
            return self._perform(step)

    def _perform(self, step: Step) -> Any:
        match step:
            case Load(name):
                return self.client.hgetall(name)
            case Eval(script, keys, args):
                return self.eval(script, keys, args)
            case Members(index):
                return self.client.zrange(index, 0, -1)
            case Metas(names, fields):
                pipe = self.client.pipeline(transaction=False)
                for name in names:
                    pipe.hmget(name, fields)
                return pipe.execute(raise_on_error=False)
            case EvalEach(script, calls):
                return self._eval_each(script, calls)

    def eval(self, script: Script, keys: list[bytes], args: list[Arg]) -> Any:
        client, wait = self.client, self.wait if script.durable else None
        if wait is not None:
            if isinstance(client, RedisCluster):
                return waiting.cluster_eval_waiting(client, script, keys, args, wait)
            return waiting.eval_waiting(client, script, keys, args, wait)
        try:
            return client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(script.source)
            return client.evalsha(script.sha, len(keys), *keys, *args)

    def _eval_each(self, script: Script, calls: list[tuple[list[bytes], list[Arg]]]) -> list[Any]:
        if self.flows.per_slot:  # each call to the node of its key
            return [self.eval(script, keys, args) for keys, args in calls]
        if self.wait is not None and script.durable:
            assert not isinstance(self.client, RedisCluster)
            return waiting.eval_each_waiting(self.client, script, calls, self.wait)
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return pipe.execute()
            except NoScriptError:  # the scripts are idempotent: load and run them again
                if attempt == 2:
                    raise
                self.client.script_load(script.source)
        raise AssertionError("unreachable")

    def scan(self, match: str, kind: str | None) -> Iterator[list[bytes]]:
        """The names under ``match`` (holding a ``kind``, if given), in bounded batches."""
        return _batched(self.client.scan_iter(match=match, count=SCAN_COUNT, _type=kind))


class AsyncIO:
    """Runs flows on an asyncio client (``redis.asyncio.Redis`` or its ``RedisCluster``)."""

    __slots__ = ("_starting", "client", "deadlines", "flows", "wait")

    def __init__(
        self, client: AsyncClient, flows: Flows, wait: waiting.Wait | None, timeout: float
    ) -> None:
        self.client = client
        self.flows = flows
        self.wait = wait
        self.deadlines = Deadlines(timeout)  # bounds each load and write (RedisStore)
        self._starting: asyncio.Lock | None = None
        if isinstance(client, AsyncRedisCluster):
            self._starting = asyncio.Lock()

    async def _start(self, cluster: AsyncRedisCluster) -> None:
        """Read the cluster's layout once, before any command: commands that each start
        the client at once break one another's first connections (redis-py 8)."""
        assert self._starting is not None
        async with self._starting:
            if self._starting is not None:
                await cluster.initialize()
                self._starting = None

    async def run(self, flow: Flow[T]) -> T:
        return await adrive(flow, self.perform)

    async def perform(self, step: Step) -> Any:
        if self._starting is not None:
            await self._start(cast(AsyncRedisCluster, self.client))
        try:
            with connection_failures():
                return await self._perform(step)
        except redis.ConnectionError as exc:
            if not unsent(exc):
                raise
        with connection_failures():
            return await self._perform(step)

    async def _perform(self, step: Step) -> Any:
        match step:
            case Load(name):
                return await self.client.hgetall(name)
            case Eval(script, keys, args):
                return await self.eval(script, keys, args)
            case Members(index):
                return await self.client.zrange(index, 0, -1)
            case Metas(names, fields):
                pipe = self.client.pipeline(transaction=False)
                for name in names:
                    pipe.hmget(name, fields)
                return await pipe.execute(raise_on_error=False)
            case EvalEach(script, calls):
                return await self._eval_each(script, calls)

    async def eval(self, script: Script, keys: list[bytes], args: list[Arg]) -> Any:
        client, wait = self.client, self.wait if script.durable else None
        if wait is not None:
            if isinstance(client, AsyncRedisCluster):
                return await waiting.acluster_eval_waiting(client, script, keys, args, wait)
            return await waiting.aeval_waiting(client, script, keys, args, wait)
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(script.source)
            return await client.evalsha(script.sha, len(keys), *keys, *args)

    async def _eval_each(
        self, script: Script, calls: list[tuple[list[bytes], list[Arg]]]
    ) -> list[Any]:
        if self.flows.per_slot:
            return [await self.eval(script, keys, args) for keys, args in calls]
        if self.wait is not None and script.durable:
            assert not isinstance(self.client, AsyncRedisCluster)
            return await waiting.aeval_each_waiting(self.client, script, calls, self.wait)
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return await pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
                await self.client.script_load(script.source)
        raise AssertionError("unreachable")

    async def scan(self, match: str, kind: str | None) -> AsyncIterator[list[bytes]]:
        batch: list[bytes] = []
        async for name in self.client.scan_iter(match=match, count=SCAN_COUNT, _type=kind):
            batch.append(name)
            if len(batch) >= SCAN_COUNT:
                yield batch
                batch = []
        if batch:
            yield batch


def _batched(items: Iterable[bytes]) -> Iterator[list[bytes]]:
    """Scan results in bounded batches (itertools.batched needs Python 3.12)."""
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= SCAN_COUNT:
            yield batch
            batch = []
    if batch:
        yield batch
