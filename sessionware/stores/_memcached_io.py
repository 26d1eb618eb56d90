"""The two drivers of MemcachedStore's flows: pymemcache (sync) and emcache (async).

emcache was measured against aiomcache on this project's machines: as fast (within the
noise, for get, gets+cas and add, one at a time and sixteen at once), and unlike
aiomcache it survives a timeout: aiomcache puts a connection whose reply is still on the
way back in its pool, and the next command on it reads that stale reply.
"""

from __future__ import annotations

import asyncio
import socket
import time
from functools import partial
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import emcache
from emcache.client_errors import (
    ClusterNoAvailableNodes,
    CommandError,
    NotFoundCommandError,
    NotStoredStorageCommandError,
    StorageCommandError,
)
from pymemcache.exceptions import MemcacheError, MemcacheServerError

from .._errors import SessionStoreError, SessionTooLargeError
from .._flow import adrive, drive
from ._memcached_layout import ITEM_OVERHEAD
from ._memcached_steps import (
    Add,
    Cas,
    Delete,
    DeleteIf,
    Flow,
    Get,
    GetMany,
    Gets,
    GetsMany,
    Pause,
    Step,
)

T = TypeVar("T")

SYNC_ERRORS = (MemcacheError, OSError)
ASYNC_ERRORS = (TimeoutError, OSError, CommandError, ClusterNoAvailableNodes)
#: Connections the async client may open per event loop (it opens them as needed).
ASYNC_CONNECTIONS = 32
_DUMP_ATTEMPTS = 20


class SyncIO:
    """Runs flows on a pymemcache client (``Client`` or ``PooledClient``)."""

    __slots__ = ("client", "max_item_bytes")

    def __init__(self, client: Any, max_item_bytes: int) -> None:
        self.client = client
        self.max_item_bytes = max_item_bytes

    def run(self, flow: Flow[T]) -> T:
        return drive(flow, self._perform)

    def _perform(self, step: Step) -> Any:
        client = self.client
        match step:
            case Get(name):
                return client.get(name)
            case Gets(name):
                value, token = client.gets(name)
                return None if value is None else (value, int(token))
            case GetMany(names):
                return client.get_many(names)
            case GetsMany(names):
                found = client.gets_many(names)
                return {name: (value, int(token)) for name, (value, token) in found.items()}
            case Add(name, value, expires):
                with _server_limit(value, self.max_item_bytes):
                    return client.add(name, value, expires, noreply=False)
            case Cas(name, value, expires, token):
                with _server_limit(value, self.max_item_bytes):
                    return client.cas(name, value, token, expires, noreply=False) is True
            case Delete(name):
                return client.delete(name, noreply=False)
            case DeleteIf(name, token):  # the meta protocol's CAS-checked delete
                return client.raw_command(b"md %s C%d" % (name, token), b"\r\n") == b"HD"
            case Pause(seconds):
                time.sleep(seconds)
                return None


class _server_limit:
    """A server whose item limit (``-I``) is below ``max_item_bytes`` refuses a value as
    too large: the caller gets ``SessionTooLargeError``, as from the store's own check."""

    __slots__ = ("limit", "value")

    def __init__(self, value: bytes, limit: int) -> None:
        self.value = value
        self.limit = limit

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, _tb: object) -> None:
        refused = isinstance(exc, MemcacheServerError | StorageCommandError)
        if refused and "too large" in str(exc):
            raise SessionTooLargeError(
                "the session's Memcached item",
                len(self.value) + ITEM_OVERHEAD,
                self.limit,
                "the server refused it: its item size limit (-I) is below max_item_bytes",
            ) from exc


# -- async --------------------------------------------------------------------------------


class AsyncConnection:
    """One event loop's emcache client, opened on first use.

    A client this store opened is replaced after a failure: emcache retries a lost
    server with a backoff that grows to a minute, a fresh client connects at once. A
    client given to the store is used as it is and never closed.
    """

    __slots__ = ("_client", "_host", "_owned", "_port", "_timeout")

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        client: emcache.Client | None = None,
    ) -> None:
        self._host, self._port, self._timeout = host, port, timeout
        self._client = client
        self._owned = client is None

    async def client(self) -> emcache.Client:
        if self._client is None:
            opened = await emcache.create_client(
                [emcache.MemcachedHostAddress(self._host, self._port)],
                timeout=self._timeout,
                connection_timeout=self._timeout,
                max_connections=ASYNC_CONNECTIONS,
            )
            if self._client is None:
                self._client = opened
            else:  # another task opened one meanwhile
                await opened.close()
        return self._client

    async def reset(self) -> None:
        if self._owned:
            await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._owned:
            await client.close()


class AsyncIO:
    """Runs flows on an emcache client."""

    __slots__ = ("connection", "max_item_bytes")

    def __init__(self, connection: AsyncConnection, max_item_bytes: int) -> None:
        self.connection = connection
        self.max_item_bytes = max_item_bytes

    async def run(self, flow: Flow[T]) -> T:
        client = await self.connection.client()
        try:
            return await adrive(flow, partial(self._perform, client))
        except ASYNC_ERRORS:
            await self.connection.reset()
            raise

    async def _perform(self, client: emcache.Client, step: Step) -> Any:
        match step:
            case Get(name):
                item = await client.get(name)
                return None if item is None else item.value
            case Gets(name):
                item = await client.gets(name)
                return None if item is None or item.cas is None else (item.value, item.cas)
            case GetMany(names):
                found = await client.get_many(names) if names else {}
                return {name: item.value for name, item in found.items()}
            case Add(name, value, expires):
                try:
                    with _server_limit(value, self.max_item_bytes):
                        await client.add(name, value, exptime=expires)
                except NotStoredStorageCommandError:
                    return False
                return True
            case Cas(name, value, expires, token):
                return await self._cas(client, name, value, expires, token)
            case Delete(name):
                try:
                    await client.delete(name)
                except NotFoundCommandError:
                    return False
                return True
            case Pause(seconds):
                await asyncio.sleep(seconds)
                return None
            case GetsMany() | DeleteIf():  # pragma: no cover - sweeps run on the sync client
                raise NotImplementedError("sweeps run on the sync client")

    async def _cas(
        self, client: emcache.Client, name: bytes, value: bytes, expires: int, token: int
    ) -> bool:
        try:
            with _server_limit(value, self.max_item_bytes):
                await client.cas(name, value, token, exptime=expires)
        except NotStoredStorageCommandError:  # EXISTS: written since the token
            return False
        except StorageCommandError as exc:
            if "NOT_FOUND" in str(exc):  # gone since the token
                return False
            raise
        return True


# -- listing what a server holds (sweeps) ---------------------------------------------------


def dump_names(server: tuple[str, int], prefix: bytes, timeout: float) -> list[bytes] | None:
    """The item names under ``prefix`` on one server (``lru_crawler metadump all``), or
    ``None`` if the server cannot list them (its LRU crawler is disabled)."""
    for attempt in range(_DUMP_ATTEMPTS):
        with socket.create_connection(server, timeout=timeout) as conn:
            conn.sendall(b"lru_crawler metadump all\r\n")
            reply = _read_dump(conn)
        if reply.startswith(b"BUSY"):  # the crawler is on another job: wait for it
            time.sleep(0.05 * (attempt + 1))
            continue
        if not reply.endswith(b"END\r\n"):
            return None
        names = []
        for line in reply.split(b"\n"):
            if line.startswith(b"key="):
                name = unquote_to_bytes(line[4:].split(b" ", 1)[0])
                if name.startswith(prefix):
                    names.append(name)
        return names
    raise SessionStoreError("Memcached session store failed in clear_expired: crawler busy")


def _read_dump(conn: socket.socket) -> bytes:
    """Item lines end in ``\\n``; the dump ends with ``END\\r\\n``, a refusal with its one
    ``\\r\\n`` line (``BUSY …``, ``ERROR``, ``CLIENT_ERROR …``)."""
    reply = bytearray()
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("Memcached closed the connection during a key dump")
        reply += chunk
        if reply.endswith(b"END\r\n"):
            return bytes(reply)
        if len(reply) >= 4 and not reply.startswith(b"key=") and b"\r\n" in reply:
            return bytes(reply)
