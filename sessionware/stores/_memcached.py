"""MemcachedStore: one Memcached item per session key, every save a ``gets``/``cas``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread

try:
    import emcache
    from pymemcache.client.base import Client, PooledClient
    from pymemcache.client.hash import HashClient
except ImportError as exc:  # pragma: no cover - the test environment has both
    raise ImportError(
        "MemcachedStore needs pymemcache and emcache: pip install 'sessionware[memcached]'"
    ) from exc

from .._errors import map_store_errors
from .._keys import info_id
from .._records import Change, Loaded, Record, SessionInfo
from .._store import (
    DEFAULT_STALE_WINDOW,
    OPERATIONS,
    Finding,
    Progress,
    SessionStore,
    Written,
    now_or,
    user_text,
)
from ._memcached_check import check_memcached
from ._memcached_flows import Flows
from ._memcached_io import ASYNC_ERRORS, SYNC_ERRORS, AsyncConnection, AsyncIO, SyncIO, dump_names
from ._memcached_layout import DEFAULT_MAX_ITEM_BYTES, HEADER_RESERVE, check_prefix
from ._memcached_steps import Flow
from ._per_loop import PerLoop

T = TypeVar("T")

DEFAULT_PORT = 11211


class MemcachedStore(SessionStore):
    """Sessions in Memcached, one item per session key.

    **Memcached may evict a live session**: it is a cache, and under memory pressure (or
    at a restart) it drops items, which logs their users out. For sessions that must
    last, put it in front of a database, as Django's ``cached_db`` does::

        CachedStore(cache=MemcachedStore(...), store=SQLStore(...))

    Items: a session's item holds a small header (times, user, kind) and its fields
    packed into one blob; a ``Stale`` or ``Moved`` marker is an item too. Each item
    expires with its record (or marker): Memcached's TTL is its ``expires_at`` (beyond
    30 days as a Unix time, Memcached's rule), and the header's times are also checked
    against the caller's clock. An item may hold at most ``max_item_bytes`` (Memcached's
    ``-I``, 1 MiB by default): a larger session is a ``SessionTooLargeError``, never a
    silently dropped save, and ``max_data_bytes`` lets the middleware refuse it early.

    Concurrency: a save reads the item with ``gets``, applies the delta and writes it with
    ``cas``; a write refused because another request wrote in between is tried again
    (with a jittered backoff; after 40 refusals ``SessionStoreError``). So concurrent
    requests that change different keys all keep their changes, from any number of
    processes, and a save that finds the item gone (expired, evicted, ended) writes
    nothing. A logout ``cas``-es the record into a ``Stale`` marker.

    Rotation and renewal span two keys, and Memcached has no transactions: the new item
    is written first (``add``), then the old one is ``cas``-ed into its marker; that
    ``cas`` decides. If the old key was ended meanwhile (a logout, a revocation, a
    concurrent rotation or renewal), the new item, which nobody was given, is deleted,
    and the caller gets what the old key holds: of concurrent renewals one wins and the
    others get its ``Moved``. Until that ``cas``, only the old key is known to anyone.

    Per-user index: one item per user lists its keys, updated by ``cas``; a key is listed
    before its record is written, listings re-read each record, and entries that hold
    nothing live are pruned after five minutes. A revocation ``cas``-es each of the
    user's records into a ``Stale`` marker, puts a marker on a key listed but not written
    yet, so a login or renewal still on its way fails instead of escaping it, and reads
    the index again until no new key shows. An index item that Memcached evicts takes
    the user's sessions with it: every record carries the generation of its index item
    and is live only while that item is there, so no session outlives the list a
    revocation reads. This costs one more ``get`` per load or save of a signed-in
    session, and a ``gets`` and a ``cas`` of the index per login.

    ``clear_expired``: Memcached expires items by itself; this lists the server's keys
    (``lru_crawler metadump``, Memcached 1.4.31+; it reads the whole key list, so it is
    for the command line, not for every request), removes this prefix's dead items with
    a CAS-checked delete (Memcached 1.6's meta ``md``: a session written meanwhile stays)
    and prunes the indexes; ``count_expired`` reads the same items and deletes nothing.
    With a client of several servers (``HashClient``) both find nothing and return 0.

    Clients: the sync methods use ``client=`` (a pymemcache ``Client``,
    ``PooledClient`` or ``HashClient``; never closed by the store) or a thread-safe
    ``PooledClient`` built from ``url``; ``timeout`` bounds connecting and each command.
    The async twins use a native asyncio client (emcache, no thread hop):
    ``async_client=`` as given (it stays bound to its loop), or, without ``client=``,
    one built from ``url`` per running event loop, closed when that loop shuts down.
    With ``client=`` alone, or under an event loop other than asyncio, each async
    operation is the sync call in a thread. Nothing connects before the first operation.
    """

    def __init__(
        self,
        url: str = "memcached://127.0.0.1:11211",
        *,
        prefix: str = "sessionware:",
        timeout: float = 5.0,
        client: Any = None,
        async_client: emcache.Client | None = None,
        max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES,
    ) -> None:
        host, port = _address(url)
        if not prefix:
            raise ValueError("MemcachedStore prefix must not be empty (clear_expired sweeps it)")
        prefix_bytes = check_prefix(prefix)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"MemcachedStore timeout must be > 0 seconds, not {timeout!r}")
        if isinstance(max_item_bytes, bool) or not isinstance(max_item_bytes, int):
            raise TypeError(f"max_item_bytes must be an int, not {max_item_bytes!r}")
        if max_item_bytes < 2 * HEADER_RESERVE:
            raise ValueError(f"max_item_bytes must be at least {2 * HEADER_RESERVE}")
        if client is not None and not isinstance(client, Client | PooledClient | HashClient):
            raise TypeError(f"client must be a pymemcache client, not {type(client).__name__}")
        if async_client is not None and not isinstance(async_client, emcache.Client):
            raise TypeError(
                f"async_client must be an emcache client, not {type(async_client).__name__}"
            )
        self.prefix = prefix
        self.max_data_bytes = max_item_bytes - HEADER_RESERVE
        self._timeout = float(timeout)
        self._flows = Flows(prefix_bytes, max_item_bytes)
        self._failed = {op: map_store_errors("Memcached", op, *SYNC_ERRORS) for op in OPERATIONS}
        self._afailed = {op: map_store_errors("Memcached", op, *ASYNC_ERRORS) for op in OPERATIONS}
        self._owns_client = client is None
        if client is None:
            client = PooledClient(
                (host, port),
                connect_timeout=timeout,
                timeout=timeout,
                no_delay=True,
                default_noreply=False,
            )
        self._sync = SyncIO(client, max_item_bytes)
        self._fixed: AsyncIO | None = None
        if async_client is not None:
            connection = AsyncConnection(host, port, self._timeout, async_client)
            self._fixed = AsyncIO(connection, max_item_bytes)
        self._per_loop: PerLoop[AsyncIO] | None = None
        if self._owns_client and async_client is None:
            self._per_loop = PerLoop(partial(self._open_async, host, port), _aclose)

    def _open_async(self, host: str, port: int) -> AsyncIO:
        return AsyncIO(AsyncConnection(host, port, self._timeout), self._flows.max_item_bytes)

    # -- sync API --------------------------------------------------------------------------

    def _run(self, operation: str, flow: Flow[T]) -> T:
        with self._failed[operation]:
            return self._sync.run(flow)

    def load(self, key: str, now: float) -> Loaded:
        return self._run("load", self._flows.load(key, now))

    def insert(self, key: str, record: Record) -> bool:
        return self._run("insert", self._flows.insert(key, record))

    def update(self, key: str, change: Change, now: float) -> Written:
        return self._run("update", self._flows.update(key, change, now))

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        return self._run("delete", self._flows.delete(key, now, stale_until))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return self._run("rotate", self._flows.rotate(key, new_key, record, now, stale_until))

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return self._run("renew", self._flows.renew(key, new_key, now, grace_until))

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        return self._run(
            "user_sessions", self._flows.user_sessions(user_text(user_id), now_or(now))
        )

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        return (
            self._run("revoke_session", self._revoke_one(user_id, session_id, now, stale_for)) > 0
        )

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return self._run("revoke_user", self._revoke_all(user_id, except_key, now, stale_for))

    def _revoke_one(
        self, user_id: str | int, session_id: str, now: float | None, stale_for: float
    ) -> Flow[int]:
        def chosen(key: str) -> bool:
            return info_id(key) == session_id

        moment = now_or(now)
        return self._flows.revoke(user_text(user_id), chosen, moment, moment + stale_for)

    def _revoke_all(
        self, user_id: str | int, except_key: str | None, now: float | None, stale_for: float
    ) -> Flow[int]:
        def chosen(key: str) -> bool:
            return key != except_key

        moment = now_or(now)
        return self._flows.revoke(user_text(user_id), chosen, moment, moment + stale_for)

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        moment = now_or(now)
        with self._failed["clear_expired"]:
            names = self._names()
            if names is not None:
                return self._sync.run(self._flows.sweep(names, moment, progress))
        if progress is not None:
            progress(0)
        return 0

    def count_expired(self, now: float | None = None) -> int:
        moment = now_or(now)
        with self._failed["count_expired"]:
            names = self._names()
            return 0 if names is None else self._sync.run(self._flows.count_dead(names, moment))

    def check(self) -> list[Finding]:
        """Each server's version and item count; the sessions under the prefix are not
        counted (that takes a listing of every key: ``clear_expired``'s work)."""
        with self._failed["check"]:
            return check_memcached(self._sync.client, self.prefix)

    def delete_all(self) -> int:
        """Remove every item under this store's prefix (tests, resets); how many."""
        with self._failed["delete_all"]:
            names = self._names() or []
            return sum(bool(self._sync.client.delete(name, noreply=False)) for name in names)

    def _names(self) -> list[bytes] | None:
        """This prefix's item names on the server; ``None`` when they cannot be listed."""
        server = getattr(self._sync.client, "server", None)
        if not (isinstance(server, tuple) and len(server) == 2):
            return None  # several servers, or a Unix socket
        return dump_names(server, self._flows.prefix, self._timeout)

    def close(self) -> None:
        """Disconnect the clients this store built; it reconnects if used again."""
        if self._owns_client:
            self._sync.client.close()
        if self._per_loop is not None:
            self._per_loop.release()

    # -- async API: a native asyncio client, one per running event loop --------------------

    async def _aio(self) -> AsyncIO | None:
        if self._fixed is not None:
            return self._fixed
        return None if self._per_loop is None else await self._per_loop.get()

    async def _arun(self, operation: str, flow: Flow[T], in_thread: Callable[[], T]) -> T:
        io = await self._aio()
        if io is None:
            flow.close()
            return await anyio.to_thread.run_sync(in_thread)
        with self._afailed[operation]:
            return await io.run(flow)

    async def aload(self, key: str, now: float) -> Loaded:
        return await self._arun("load", self._flows.load(key, now), partial(self.load, key, now))

    async def ainsert(self, key: str, record: Record) -> bool:
        flow = self._flows.insert(key, record)
        return await self._arun("insert", flow, partial(self.insert, key, record))

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        flow = self._flows.update(key, change, now)
        return await self._arun("update", flow, partial(self.update, key, change, now))

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        flow = self._flows.delete(key, now, stale_until)
        return await self._arun("delete", flow, partial(self.delete, key, now, stale_until))

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        flow = self._flows.rotate(key, new_key, record, now, stale_until)
        call = partial(self.rotate, key, new_key, record, now, stale_until)
        return await self._arun("rotate", flow, call)

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        flow = self._flows.renew(key, new_key, now, grace_until)
        return await self._arun("renew", flow, partial(self.renew, key, new_key, now, grace_until))

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        flow = self._flows.user_sessions(user_text(user_id), now_or(now))
        return await self._arun("user_sessions", flow, partial(self.user_sessions, user_id, now))

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        flow = self._revoke_one(user_id, session_id, now, stale_for)
        call = partial(self.revoke_session, user_id, session_id, now, stale_for)
        return bool(await self._arun("revoke_session", flow, call))

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        flow = self._revoke_all(user_id, except_key, now, stale_for)
        call = partial(self.revoke_user, user_id, except_key, now, stale_for)
        return await self._arun("revoke_user", flow, call)

    async def aclose(self) -> None:
        if self._owns_client:
            self._sync.client.close()
        if self._per_loop is not None:
            await self._per_loop.aclose()


async def _aclose(io: AsyncIO) -> None:
    await io.connection.aclose()


def _address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ``memcached://host[:port]`` URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "memcached":
        # Only the scheme is echoed: the rest of a URL may hold a password.
        raise ValueError(f"MemcachedStore needs a memcached:// URL, not {parts.scheme!r}")
    extra = parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
    if extra:
        raise ValueError(
            "a MemcachedStore URL is memcached://host[:port] and nothing more "
            "(name the key prefix with prefix=)"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ValueError("MemcachedStore URL has an invalid port") from exc
    return parts.hostname or "127.0.0.1", port
