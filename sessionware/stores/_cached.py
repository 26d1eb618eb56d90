"""CachedStore: Django's cached_db, a fast cache in front of the store that holds the truth.

The logic is written once, as flows: generators that yield the component operations they
want done (httpx's ``auth_flow`` pattern). ``_run`` drives a flow with the components'
sync methods, ``_arun`` with their async twins, so the two colours cannot drift apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator
from typing import Any, TypeVar

from .._errors import SessionStoreError
from .._records import Change, Record
from .._serializers import Serializer
from .base import SessionStore

logger = logging.getLogger("sessionware")

T = TypeVar("T")
Op = tuple[SessionStore, str, tuple[Any, ...]]
Flow = Generator[Op, Any, T]

_FAILED: Any = object()  # what a cache operation gives when the cache is out
_STALE_LIMIT = 100_000


class CachedStore(SessionStore):
    """Reads from ``cache`` first, writes through to ``store`` and then ``cache``.

    ``store`` is the source of truth: ``create``, ``update`` and ``delete`` go to it first,
    and what it answers is the answer (an ``update`` it refuses also drops the cached copy,
    so a flushed session is never resurrected). A load that misses the cache reads the
    store and fills the cache. An update applies the same change to the cached copy, so
    writers that share the cache (other CachedStores, other processes) keep it equal to
    the store, distinct keys of concurrent requests included. A fill is checked against
    the store once more (misses are rare: the cache is filled at create), so a write or a
    logout racing it never leaves an older copy behind. Every CachedStore over one store
    must use the same cache (Redis, say): a per-process cache such as a MemoryStore is
    coherent only while one process writes. Residual window: two requests writing the
    *same* key at the same instant may reach store and cache in different orders; the
    cache then holds the other of the two values until that key is written again.

    Expiry: both copies carry the store's ``expires_at`` and a copy past it is never
    served; ``clear_expired`` clears the store (the cache must expire entries itself, as
    RedisStore and MemoryStore do).

    Outages: a ``SessionStoreError`` from the cache never fails a request; the store
    serves alone, one WARNING is logged per outage, and the cache is retried after
    ``cache_retry_after`` seconds. Keys written meanwhile are remembered (in this process)
    and their cached copies dropped once the cache answers. A store outage raises
    ``SessionStoreError``. ``serializer``, when set, is set on both components.
    """

    cache_retry_after: float = 5.0

    def __init__(
        self, cache: SessionStore, store: SessionStore, serializer: Serializer | None = None
    ) -> None:
        if cache is store:
            raise ValueError("CachedStore needs two different stores: cache and store")
        self.cache = cache
        self.store = store
        if serializer is not None:
            self.serializer = serializer
        self._outage = False
        self._retry_at = 0.0
        self._stale: dict[str, None] = {}  # keys whose cached copy may be stale
        self._lock = threading.Lock()

    @property
    def serializer(self) -> Serializer:
        return self.store.serializer

    @serializer.setter
    def serializer(self, value: Serializer) -> None:
        self.store.serializer = value
        self.cache.serializer = value

    # -- the two drivers and the twins ----------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        return _run(self._load(key, now))

    def create(self, key: str, record: Record) -> bool:
        return _run(self._create(key, record))

    def update(self, key: str, change: Change, now: float) -> bool:
        return _run(self._update(key, change, now))

    def delete(self, key: str) -> bool:
        return _run(self._delete(key))

    def clear_expired(self, now: float | None = None) -> int:
        return self.store.clear_expired(now)

    def close(self) -> None:
        try:
            self.cache.close()
        finally:
            self.store.close()

    async def aload(self, key: str, now: float) -> Record | None:
        return await _arun(self._load(key, now))

    async def acreate(self, key: str, record: Record) -> bool:
        return await _arun(self._create(key, record))

    async def aupdate(self, key: str, change: Change, now: float) -> bool:
        return await _arun(self._update(key, change, now))

    async def adelete(self, key: str) -> bool:
        return await _arun(self._delete(key))

    async def aclear_expired(self, now: float | None = None) -> int:
        return await self.store.aclear_expired(now)

    async def aclose(self) -> None:
        try:
            await self.cache.aclose()
        finally:
            await self.store.aclose()

    # -- the flows --------------------------------------------------------------------------

    def _load(self, key: str, now: float) -> Flow[Record | None]:
        cached = _FAILED
        if key not in self._stale or (yield from self._drop_stale(key)):
            cached = yield from self._cache_op("load", key, now)
            if isinstance(cached, Record):
                return cached
        record: Record | None = yield (self.store, "load", (key, now))
        if record is None or cached is _FAILED:
            return record
        yield from self._put(key, record)
        # A write or delete may have reached the store between our read and our fill, and
        # found no cached copy to change: read again, and drop the copy if it is behind.
        again: Record | None = yield (self.store, "load", (key, now))
        if again != record:
            yield from self._cache_write(key, "delete", key)
        return again

    def _create(self, key: str, record: Record) -> Flow[bool]:
        created: bool = yield (self.store, "create", (key, record))
        if created and (key not in self._stale or (yield from self._drop_stale(key))):
            yield from self._put(key, record)
        return created

    def _update(self, key: str, change: Change, now: float) -> Flow[bool]:
        alive: bool = yield (self.store, "update", (key, change, now))
        if not alive:  # gone from the store: the cached copy must not outlive it
            yield from self._cache_write(key, "delete", key)
        elif key in self._stale:  # the next load refills the store's truth
            yield from self._drop_stale(key)
        elif (yield from self._cache_write(key, "update", key, change, now)) is False:
            # The cache lacks a live copy (evicted, or past its time): drop what is left.
            yield from self._cache_write(key, "delete", key)
        return alive

    def _delete(self, key: str) -> Flow[bool]:
        # Logout and key rotation must be final in every process sharing the cache, so
        # the cached copy goes first; a cache that cannot drop it fails the request
        # (503) before the store is touched, rather than leave a copy others would serve.
        if (yield from self._cache_op("delete", key)) is _FAILED:
            raise SessionStoreError("session cache unavailable: cannot end the session")
        existed: bool = yield (self.store, "delete", (key,))
        yield from self._cache_write(key, "delete", key)  # a fill that raced the delete
        return existed

    def _put(self, key: str, record: Record) -> Flow[None]:
        """Fill the cache with the store's copy, replacing an unreadable or expired one."""
        if (yield from self._cache_write(key, "create", key, record)) is False:
            yield from self._cache_write(key, "delete", key)
            yield from self._cache_write(key, "create", key, record)

    def _cache_write(self, key: str, name: str, *args: Any) -> Flow[Any]:
        """A cache write that, if it fails, leaves the key's cached copy suspect."""
        result = yield from self._cache_op(name, *args)
        if result is _FAILED:
            with self._lock:
                self._stale[key] = None
                if len(self._stale) > _STALE_LIMIT:  # bounded memory: forget the oldest
                    del self._stale[next(iter(self._stale))]
        return result

    def _drop_stale(self, key: str) -> Flow[bool]:
        """Delete a suspect cached copy; whether the cache may be used for ``key`` again."""
        if (yield from self._cache_op("delete", key)) is _FAILED:
            return False
        with self._lock:
            self._stale.pop(key, None)
        return True

    def _cache_op(self, name: str, *args: Any) -> Flow[Any]:
        """One cache operation: its result, or ``_FAILED`` when the cache is out."""
        if self._outage and time.monotonic() < self._retry_at:
            return _FAILED
        try:
            result = yield (self.cache, name, args)
        except SessionStoreError as exc:
            self._retry_at = time.monotonic() + self.cache_retry_after
            if not self._outage:
                self._outage = True
                logger.warning(
                    "sessionware: session cache unavailable, using the store alone: %s", exc
                )
            return _FAILED
        if self._outage:
            self._outage = False
            logger.info("sessionware: session cache available again")
        return result


def _run(flow: Flow[T]) -> T:
    """Drive a flow with the components' sync methods."""
    try:
        op = next(flow)
        while True:
            component, name, args = op
            try:
                result = getattr(component, name)(*args)
            except SessionStoreError as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value


async def _arun(flow: Flow[T]) -> T:
    """Drive a flow with the components' async twins (no thread hop of its own)."""
    try:
        op = next(flow)
        while True:
            component, name, args = op
            try:
                result = await getattr(component, "a" + name)(*args)
            except SessionStoreError as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
