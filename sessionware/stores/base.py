"""The contract every server-side store fulfils, sync for WSGI and async for ASGI.

A store keeps ``Record``s by session key. Writes are deltas (``Change``), applied
atomically with the store's own mechanism, so concurrent requests on one session never
erase each other's keys, and a record that is gone (flushed, rotated away, expired) is
never brought back by a late ``update``.

Subclasses implement the sync methods; the async twins default to one thread hop each.
A store with native async I/O overrides the twins; a store that can only do async sets
``supports_sync = False`` and is refused by the WSGI middleware.
"""

from __future__ import annotations

import time
from functools import partial
from typing import ClassVar

import anyio.to_thread

from .._records import Change, Record
from .._serializers import JSONSerializer, Serializer


class SessionStore:
    """Base class of server-side stores; see the module docstring for the guarantees."""

    supports_sync: ClassVar[bool] = True

    def __init__(self, serializer: Serializer | None = None) -> None:
        self.serializer: Serializer = serializer if serializer is not None else JSONSerializer()

    # -- sync API (WSGI, command line) ---------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        """The live record for ``key``; ``None`` if absent, expired or undecodable."""
        raise NotImplementedError

    def create(self, key: str, record: Record) -> bool:
        """Insert ``record`` under a new key; ``False`` if a live record already has it."""
        raise NotImplementedError

    def update(self, key: str, change: Change, now: float) -> bool:
        """Apply ``change`` atomically; ``False`` (and nothing written) if no live record."""
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        """Remove the record; ``True`` if a record was there to remove."""
        raise NotImplementedError

    def clear_expired(self, now: float | None = None) -> int:
        """Remove expired records; the number removed."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files; the store may be used again afterwards."""

    # -- async API (ASGI): one thread hop per operation unless overridden -----------------

    async def aload(self, key: str, now: float) -> Record | None:
        return await anyio.to_thread.run_sync(partial(self.load, key, now))

    async def acreate(self, key: str, record: Record) -> bool:
        return await anyio.to_thread.run_sync(partial(self.create, key, record))

    async def aupdate(self, key: str, change: Change, now: float) -> bool:
        return await anyio.to_thread.run_sync(partial(self.update, key, change, now))

    async def adelete(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(partial(self.delete, key))

    async def aclear_expired(self, now: float | None = None) -> int:
        return await anyio.to_thread.run_sync(partial(self.clear_expired, now))

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)


def now_or(now: float | None) -> float:
    """``now`` if given (tests pin the clock), else the wall clock."""
    return time.time() if now is None else now
