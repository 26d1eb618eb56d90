"""RedisStore: one Redis HASH per session, each operation one round trip (see _redis_layout)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import SessionStoreError
from .._records import Change, Record
from .._serializers import Serializer
from . import _redis_layout as layout
from ._per_loop import PerLoop
from .base import SessionStore, now_or

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster
    from redis.commands.core import AsyncScript, Script

    SyncClient = redis.Redis | RedisCluster
    AsyncClient = redis.asyncio.Redis | AsyncRedisCluster

_SCAN_COUNT = 500
T = TypeVar("T")


@dataclass(slots=True)
class _Sync:
    client: SyncClient
    create: Script
    update: Script
    expire: Script


@dataclass(slots=True)
class _Async:
    client: AsyncClient
    create: AsyncScript
    update: AsyncScript
    expire: AsyncScript


class RedisStore(SessionStore):
    """Sessions in Redis, expired by Redis itself (``PEXPIREAT``), so no sweeper is needed.

    Concurrency: ``load`` is one ``HGETALL``; ``create``, ``update`` and ``delete`` are one
    atomic command each (Lua scripts for the first two), so concurrent requests on one
    session, from any number of processes, never lose each other's keys, and an ``update``
    of a record that is gone (deleted, rotated, expired) writes nothing and returns False.

    Expiry: a record is dead at its ``expires_at`` (checked at load and update against the
    caller's clock) and Redis deletes it then; ``clear_expired`` only removes records
    whose TTL was somehow lost, scanning the prefix in bounded batches.

    Clients: built from ``url`` (nothing connects before the first operation), with
    ``timeout`` for connecting and each command. A ready ``client=`` (``redis.Redis``,
    ``RedisCluster``, a Sentinel ``master_for`` client; ``decode_responses=False``) serves
    the sync methods and is never closed by the store. The async twins use a native
    ``redis.asyncio`` client: ``async_client=`` as given (it stays bound to its loop), or,
    without ``client=``, one built from ``url`` per running event loop and closed when that
    loop shuts down. With ``client=`` alone, or under an event loop other than asyncio,
    each async operation is the sync call run in one thread hop.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sessionware:",
        client: SyncClient | None = None,
        async_client: AsyncClient | None = None,
        serializer: Serializer | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(serializer)
        try:
            import redis
            import redis.asyncio
            import redis.asyncio.retry
            import redis.backoff
            import redis.client
            import redis.retry
        except ImportError as exc:  # pragma: no cover - the test environment has redis
            raise ImportError("RedisStore needs redis: pip install 'sessionware[redis]'") from exc
        if not prefix:
            raise ValueError("RedisStore prefix must not be empty (delete_all() clears it)")
        if not timeout > 0:
            raise ValueError("RedisStore timeout must be > 0 seconds")
        self.prefix = prefix
        self._prefix = prefix.encode()
        self._match = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._redis = redis
        self._timeout = timeout
        self._owns_client = client is None
        if client is None:
            client = redis.Redis.from_url(url, **self._options(redis.retry.Retry))
        for given in (client, async_client):
            if given is not None and given.get_connection_kwargs().get("decode_responses"):
                raise ValueError("RedisStore needs a client with decode_responses=False")
        scripts = [
            client.register_script(s)
            for s in (layout.CREATE, layout.UPDATE, layout.DELETE_IF_EXPIRED)
        ]
        self._sync = _Sync(client, *scripts)
        self._fixed: _Async | None = None
        if async_client is not None:
            self._fixed = _async_conn(async_client)
        self._per_loop: PerLoop[_Async] | None = None
        if self._owns_client and async_client is None:
            self._per_loop = PerLoop(partial(self._open_async, url), _aclose_conn)

    def _options(self, retry: Any) -> dict[str, Any]:
        # Retry once at once on a dropped connection; never retry a timeout (it only
        # multiplies the wait of a request whose server does not answer).
        error = self._redis.ConnectionError
        policy = retry(self._redis.backoff.NoBackoff(), 1, supported_errors=(error,))
        return {
            "socket_timeout": self._timeout,
            "socket_connect_timeout": self._timeout,
            "retry": policy,
        }

    # -- sync API ------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        raw: Mapping[bytes | str, bytes | str] | None
        try:
            raw = self._sync.client.hgetall(self._name(key))
        except Exception as exc:
            self._raise_unless_foreign(exc)
            raw = None
        return layout.read(key, raw, now, self.serializer)

    def create(self, key: str, record: Record) -> bool:
        args = layout.create_args(record, self.serializer)
        try:
            return bool(self._sync.create(keys=[self._name(key)], args=args))
        except self._errors as exc:
            raise self._failed("create", exc) from exc

    def update(self, key: str, change: Change, now: float) -> bool:
        args = layout.update_args(change, now, self.serializer)
        try:
            return bool(self._sync.update(keys=[self._name(key)], args=args))
        except self._errors as exc:
            raise self._failed("update", exc) from exc

    def delete(self, key: str) -> bool:
        try:
            return bool(self._sync.client.delete(self._name(key)))
        except self._errors as exc:
            raise self._failed("delete", exc) from exc

    def clear_expired(self, now: float | None = None) -> int:
        moment = repr(now_or(now))
        try:
            names = self._sync.client.scan_iter(match=self._match, count=_SCAN_COUNT)
            return sum(self._expire_batch(batch, moment) for batch in _batched(names))
        except self._errors as exc:
            raise self._failed("clear_expired", exc) from exc

    def _expire_batch(self, names: list[Any], moment: str) -> int:
        pipe = self._sync.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(name, "e")
        found = pipe.execute(raise_on_error=False)
        doomed = [n for n, e in zip(names, found, strict=True) if layout.is_past(e, moment)]
        if not doomed:
            return 0
        pipe = self._sync.client.pipeline(transaction=False)
        if not isinstance(pipe, self._redis.client.Pipeline):  # a cluster: key by key
            return sum(int(self._sync.expire(keys=[name], args=[moment])) for name in doomed)
        # One script call per key (each touches one key), all in one round trip.
        for name in doomed:
            self._sync.expire(keys=[name], args=[moment], client=pipe)
        return sum(int(n) for n in pipe.execute())

    def delete_all(self) -> int:
        """Remove every key under this store's prefix (tests, resets); the number removed."""
        client = self._sync.client
        try:
            names = client.scan_iter(match=self._match, count=_SCAN_COUNT)
            return sum(int(client.unlink(*batch)) for batch in _batched(names))
        except self._errors as exc:
            raise self._failed("delete_all", exc) from exc

    def close(self) -> None:
        """Disconnect the clients this store built; it reconnects if used again."""
        if self._owns_client:
            self._sync.client.close()
        if self._per_loop is not None:
            self._per_loop.release()

    # -- async API: native asyncio client, one per running event loop ----------------------

    async def aload(self, key: str, now: float) -> Record | None:
        conn = await self._aconn()
        if conn is None:
            return await super().aload(key, now)
        raw: Mapping[bytes | str, bytes | str] | None
        try:
            raw = await conn.client.hgetall(self._name(key))
        except Exception as exc:
            self._raise_unless_foreign(exc)
            raw = None
        return layout.read(key, raw, now, self.serializer)

    async def acreate(self, key: str, record: Record) -> bool:
        conn = await self._aconn()
        if conn is None:
            return await super().acreate(key, record)
        args = layout.create_args(record, self.serializer)
        try:
            return bool(await conn.create(keys=[self._name(key)], args=args))
        except self._errors as exc:
            raise self._failed("create", exc) from exc

    async def aupdate(self, key: str, change: Change, now: float) -> bool:
        conn = await self._aconn()
        if conn is None:
            return await super().aupdate(key, change, now)
        args = layout.update_args(change, now, self.serializer)
        try:
            return bool(await conn.update(keys=[self._name(key)], args=args))
        except self._errors as exc:
            raise self._failed("update", exc) from exc

    async def adelete(self, key: str) -> bool:
        conn = await self._aconn()
        if conn is None:
            return await super().adelete(key)
        try:
            return bool(await conn.client.delete(self._name(key)))
        except self._errors as exc:
            raise self._failed("delete", exc) from exc

    async def aclear_expired(self, now: float | None = None) -> int:
        conn = await self._aconn()
        if conn is None:
            return await super().aclear_expired(now)
        moment, removed, batch = repr(now_or(now)), 0, []
        try:
            async for name in conn.client.scan_iter(match=self._match, count=_SCAN_COUNT):
                batch.append(name)
                if len(batch) >= _SCAN_COUNT:
                    removed += await self._aexpire_batch(conn, batch, moment)
                    batch = []
            return removed + await self._aexpire_batch(conn, batch, moment)
        except self._errors as exc:
            raise self._failed("clear_expired", exc) from exc

    async def _aexpire_batch(self, conn: _Async, names: list[Any], moment: str) -> int:
        pipe = conn.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(name, "e")
        found = await pipe.execute(raise_on_error=False)
        doomed = [n for n, e in zip(names, found, strict=True) if layout.is_past(e, moment)]
        if not doomed:
            return 0
        pipe = conn.client.pipeline(transaction=False)
        if not isinstance(pipe, self._redis.asyncio.client.Pipeline):
            return sum([int(await conn.expire(keys=[name], args=[moment])) for name in doomed])
        for name in doomed:
            await conn.expire(keys=[name], args=[moment], client=pipe)
        return sum(int(n) for n in await pipe.execute())

    async def aclose(self) -> None:
        """Close this loop's async client now, the others on their own loops; see ``close``."""
        if self._per_loop is not None:
            await self._per_loop.aclose()
        self.close()

    async def _aconn(self) -> _Async | None:
        """The async client for the running loop; None means: hop to a thread."""
        if self._per_loop is None:
            return self._fixed
        return await self._per_loop.get()

    def _open_async(self, url: str) -> _Async:
        options = self._options(self._redis.asyncio.retry.Retry)
        return _async_conn(self._redis.asyncio.Redis.from_url(url, **options))

    # -- shared by the twins --------------------------------------------------------------

    def _name(self, key: str) -> bytes:
        return self._prefix + key.encode()

    def _failed(self, op: str, exc: Exception) -> SessionStoreError:
        return SessionStoreError(f"Redis {op} failed: {exc.__class__.__name__}: {exc}")

    def _raise_unless_foreign(self, exc: Exception) -> None:
        """A key of another type under our prefix reads as foreign data; the rest raises."""
        if isinstance(exc, self._redis.ResponseError) and str(exc).startswith("WRONGTYPE"):
            return
        if isinstance(exc, self._errors):
            raise self._failed("load", exc) from exc
        raise exc


async def _aclose_conn(conn: _Async) -> None:
    await conn.client.aclose()


def _async_conn(client: AsyncClient) -> _Async:
    register = client.register_script
    return _Async(
        client, register(layout.CREATE), register(layout.UPDATE), register(layout.DELETE_IF_EXPIRED)
    )


def _batched(items: Iterable[T]) -> Iterator[list[T]]:
    """Scan results in bounded batches (itertools.batched needs Python 3.12)."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= _SCAN_COUNT:
            yield batch
            batch = []
    if batch:
        yield batch
