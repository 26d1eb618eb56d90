"""RedisStore: one Redis HASH per session key, each load and each save one round trip."""

from __future__ import annotations

import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster
except ImportError as exc:  # pragma: no cover - the test environment has redis
    raise ImportError("RedisStore needs redis: pip install 'sessionware[redis]'") from exc

from .._errors import map_store_errors
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
from ._per_loop import PerLoop
from ._redis_check import check_redis
from ._redis_clients import open_async, open_sync, parse_target
from ._redis_flows import Flows, Load
from ._redis_io import AsyncIO, SyncIO
from ._redis_layout import USERS, read
from ._redis_wait import Wait

if TYPE_CHECKING:
    from ._redis_io import AsyncClient, SyncClient

T = TypeVar("T")

_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


class RedisStore(SessionStore):
    """Sessions in Redis, expired by Redis itself (``PEXPIREAT`` on every session key).

    Round trips: ``load`` is one ``HGETALL``; every write (insert, update, delete,
    rotate, renew) is one Lua script call, atomic on the server, so concurrent requests
    on one session, from any number of processes, never lose each other's keys, a key
    that was ended (logout, rotation, revocation) is never written again, and of
    concurrent renewals exactly one wins while the others get its ``Moved`` pointer.

    Expiry: each session hash expires at its record's ``expires_at`` (or its marker's
    ``until``), set by the same script that writes it, so no key is ever left without a
    TTL; records are also checked against the caller's clock. ``clear_expired`` removes
    what that clock calls dead and prunes the per-user index; ``count_expired`` and
    ``check`` read the same keys and write nothing.

    Per-user index: a sorted set per user. On one server every script keeps it exact, it
    expires after its last session, each login drops dead entries from it, and
    ``revoke_user`` is one script, so nothing escapes a revocation. Under Redis Cluster
    (a ``RedisCluster`` client) a session is one key, so one hash slot, but a write that
    also touches another key (the index, a rotation's new key) becomes one script per
    slot, and the index may hold dead entries until ``clear_expired`` or a listing
    prunes them; listings and revocations re-read every session, so neither is ever
    wrong (see ``_redis_flows``). Needs Redis 6.0 or later, or Valkey.

    Replicas: with ``wait_replicas=N`` every write also waits (``WAIT``, in the same
    round trip) until N replicas acknowledged it, at most ``wait_timeout`` seconds; a
    write fewer replicas acknowledged raises ``SessionStoreError`` (the middleware
    answers 503), so a failover never loses a write the application was told succeeded.
    No command is re-sent once it may have reached the server (a script may have run
    before its reply was lost): only a failure to open a connection is tried once more,
    which also carries requests over to a promoted replica after a failover.

    Timeouts: ``timeout`` bounds connecting and each command; an async load or session
    write also answers within ``timeout`` in all, whatever redis-py tries meanwhile. A
    sync one may take a multiple when the network fails, as redis-py tries the sentinels
    or cluster nodes in turn, each for ``timeout``.

    Clients: built from ``url`` (``redis://``, ``rediss://``, ``unix://``,
    ``redis+cluster://host:port,…``, ``redis+sentinel://host:port,…/service[/db]``;
    nothing connects before the first operation). A ready ``client=`` (``redis.Redis``,
    a Sentinel ``master_for`` client, or ``redis.cluster.RedisCluster``; never with
    ``decode_responses=True``) serves the sync methods and is never closed by the store;
    its own retry settings apply. The async twins use a native asyncio client:
    ``async_client=`` as given (it stays bound to its loop), or, without ``client=``, one
    built from ``url`` per running event loop and closed when that loop shuts down. With
    ``client=`` alone, or under an event loop other than asyncio, each async operation
    is the sync call in a thread.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sessionware:",
        client: SyncClient | None = None,
        async_client: AsyncClient | None = None,
        timeout: float = 5.0,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
    ) -> None:
        if not prefix:
            raise ValueError("RedisStore prefix must not be empty (delete_all() clears it)")
        if not timeout > 0:
            raise ValueError("RedisStore timeout must be > 0 seconds")
        if isinstance(wait_replicas, bool) or not isinstance(wait_replicas, int):
            raise TypeError("RedisStore wait_replicas must be an int")
        if wait_replicas < 0:
            raise ValueError("RedisStore wait_replicas must be >= 0")
        if wait_replicas and not 0 < wait_timeout < timeout:
            raise ValueError(
                "RedisStore wait_timeout must be > 0 and shorter than timeout "
                "(the socket would give up before WAIT answers)"
            )
        _check_client(client, (redis.Redis, redis.cluster.RedisCluster), "client")
        _check_client(
            async_client,
            (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster),
            "async_client",
        )
        target = parse_target(url)  # a mistake is a ValueError now, not at first use
        self.prefix = prefix
        self._prefix = prefix.encode()
        escaped = re.sub(r"([*?\[\]\\])", r"\\\1", prefix)
        self._hashes, self._indexes = escaped + "*", escaped + USERS.decode() + "*"
        self._timeout = timeout
        self._wait = Wait(wait_replicas, wait_timeout) if wait_replicas else None
        self._failed = {op: map_store_errors("Redis", op, *_ERRORS) for op in OPERATIONS}
        self._owns_client = client is None
        self._closers: list[Callable[[], None]] = []
        self._opening = threading.Lock()
        self._sync_io: SyncIO | None = None
        if client is not None:
            self._sync_io = SyncIO(client, self._flows(client), self._wait)

        def open_sync_io() -> SyncIO:
            opened, close = open_sync(target, timeout)
            self._closers.append(close)
            return SyncIO(opened, self._flows(opened), self._wait)

        self._open_sync = open_sync_io
        self._fixed: AsyncIO | None = None
        if async_client is not None:
            self._fixed = AsyncIO(async_client, self._flows(async_client), self._wait, timeout)
        self._per_loop: PerLoop[tuple[AsyncIO, Callable[[], Awaitable[None]]]] | None = None
        if self._owns_client and async_client is None:

            def open_async_io() -> tuple[AsyncIO, Callable[[], Awaitable[None]]]:
                opened, aclose = open_async(target, timeout)
                return AsyncIO(opened, self._flows(opened), self._wait, timeout), aclose

            self._per_loop = PerLoop(open_async_io, _aclose)

    def _flows(self, client: SyncClient | AsyncClient) -> Flows:
        cluster = (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster)
        return Flows(self._prefix, per_slot=isinstance(client, cluster))

    @property
    def _sync(self) -> SyncIO:
        """The sync driver; its client is built on first use (a cluster client connects
        as it is built)."""
        io = self._sync_io
        if io is None:
            with self._opening:
                if self._sync_io is None:
                    self._sync_io = self._open_sync()
                io = self._sync_io
        return io

    # -- sync API --------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        raw: Mapping[Any, Any] | Exception
        with self._failed["load"]:
            try:
                raw = self._sync.perform(Load(self._prefix + key.encode("utf-8", "surrogatepass")))
            except redis.ResponseError as exc:
                raw = _foreign(exc)
        return read(key, raw, now)

    def insert(self, key: str, record: Record) -> bool:
        with self._failed["insert"]:
            return self._sync.run(self._sync.flows.insert(key, record))

    def update(self, key: str, change: Change, now: float) -> Written:
        with self._failed["update"]:
            return self._sync.run(self._sync.flows.update(key, change, now))

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        with self._failed["delete"]:
            return self._sync.run(self._sync.flows.delete(key, now, stale_until))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        with self._failed["rotate"]:  # building the client may connect (a cluster does)
            return self._sync.run(self._sync.flows.rotate(key, new_key, record, now, stale_until))

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        with self._failed["renew"]:
            return self._sync.run(self._sync.flows.renew(key, new_key, now, grace_until))

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        moment, removed = now_or(now), 0
        with self._failed["clear_expired"]:
            io = self._sync
            for names in io.scan(self._hashes, "hash"):
                removed += io.run(io.flows.expire_batch(names, moment))
                if progress is not None:
                    progress(removed)
            for indexes in io.scan(self._indexes, "zset"):
                for index in indexes:
                    io.run(io.flows.prune_index(index, moment))
        if progress is not None:
            progress(removed)
        return removed

    def count_expired(self, now: float | None = None) -> int:
        moment = now_or(now)
        with self._failed["count_expired"]:
            io = self._sync
            return sum(
                io.run(io.flows.count_dead(names, moment))
                for names in io.scan(self._hashes, "hash")
            )

    def check(self) -> list[Finding]:
        """The server (version, address; never the password), the keys under the prefix
        and the live sessions among them. Reads only."""
        with self._failed["check"]:
            return check_redis(self._sync, self.prefix, self._hashes)

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        with self._failed["user_sessions"]:
            return self._sync.run(self._sync.flows.user_sessions(user_text(user_id), now_or(now)))

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        moment = now_or(now)
        with self._failed["revoke_session"]:
            flow = self._sync.flows.revoke_session(
                user_text(user_id), session_id, moment, moment + stale_for
            )
            return self._sync.run(flow)

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        moment = now_or(now)
        with self._failed["revoke_user"]:
            flow = self._sync.flows.revoke_user(
                user_text(user_id), except_key, moment, moment + stale_for
            )
            return self._sync.run(flow)

    def delete_all(self) -> int:
        """Remove every key under this store's prefix (tests, resets); the number removed."""
        with self._failed["delete_all"]:
            client = self._sync.client
            return sum(int(client.unlink(*names)) for names in self._sync.scan(self._hashes, None))

    def close(self) -> None:
        """Disconnect the clients this store built; it reconnects if used again."""
        if self._owns_client:
            with self._opening:
                self._sync_io = None
                closers, self._closers = self._closers, []
            for close in closers:
                close()
        if self._per_loop is not None:
            self._per_loop.release()

    # -- async API: a native asyncio client, one per running event loop --------------------

    async def aload(self, key: str, now: float) -> Loaded:
        io = await self._aio()
        if io is None:
            return await super().aload(key, now)
        raw: Mapping[Any, Any] | Exception
        with self._failed["load"]:
            try:
                name = self._prefix + key.encode("utf-8", "surrogatepass")
                raw = await self._bounded(io, io.perform(Load(name)))
            except redis.ResponseError as exc:
                raw = _foreign(exc)
        return read(key, raw, now)

    async def ainsert(self, key: str, record: Record) -> bool:
        io = await self._aio()
        if io is None:
            return await super().ainsert(key, record)
        with self._failed["insert"]:
            return await self._bounded(io, io.run(io.flows.insert(key, record)))

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        io = await self._aio()
        if io is None:
            return await super().aupdate(key, change, now)
        with self._failed["update"]:
            return await self._bounded(io, io.run(io.flows.update(key, change, now)))

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        io = await self._aio()
        if io is None:
            return await super().adelete(key, now, stale_until)
        with self._failed["delete"]:
            return await self._bounded(io, io.run(io.flows.delete(key, now, stale_until)))

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        io = await self._aio()
        if io is None:
            return await super().arotate(key, new_key, record, now, stale_until)
        with self._failed["rotate"]:
            return await self._bounded(
                io, io.run(io.flows.rotate(key, new_key, record, now, stale_until))
            )

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        io = await self._aio()
        if io is None:
            return await super().arenew(key, new_key, now, grace_until)
        with self._failed["renew"]:
            return await self._bounded(io, io.run(io.flows.renew(key, new_key, now, grace_until)))

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        io = await self._aio()
        if io is None:
            return await super().aclear_expired(now, progress)
        moment, removed = now_or(now), 0
        with self._failed["clear_expired"]:
            async for names in io.scan(self._hashes, "hash"):
                removed += await io.run(io.flows.expire_batch(names, moment))
                if progress is not None:
                    progress(removed)
            async for indexes in io.scan(self._indexes, "zset"):
                for index in indexes:
                    await io.run(io.flows.prune_index(index, moment))
        if progress is not None:
            progress(removed)
        return removed

    async def acount_expired(self, now: float | None = None) -> int:
        io = await self._aio()
        if io is None:
            return await super().acount_expired(now)
        moment, dead = now_or(now), 0
        with self._failed["count_expired"]:
            async for names in io.scan(self._hashes, "hash"):
                dead += await io.run(io.flows.count_dead(names, moment))
        return dead

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        io = await self._aio()
        if io is None:
            return await super().auser_sessions(user_id, now)
        with self._failed["user_sessions"]:
            return await io.run(io.flows.user_sessions(user_text(user_id), now_or(now)))

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        io = await self._aio()
        if io is None:
            return await super().arevoke_session(user_id, session_id, now, stale_for)
        moment = now_or(now)
        flow = io.flows.revoke_session(user_text(user_id), session_id, moment, moment + stale_for)
        with self._failed["revoke_session"]:
            return await io.run(flow)

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        io = await self._aio()
        if io is None:
            return await super().arevoke_user(user_id, except_key, now, stale_for)
        moment = now_or(now)
        flow = io.flows.revoke_user(user_text(user_id), except_key, moment, moment + stale_for)
        with self._failed["revoke_user"]:
            return await io.run(flow)

    async def aclose(self) -> None:
        """Close this loop's async client now, the others on their own loops; see ``close``."""
        if self._per_loop is not None:
            await self._per_loop.aclose()
        self.close()

    async def _bounded(self, io: AsyncIO, operation: Awaitable[T]) -> T:
        """Await a request's operation (a load or a session write) for ``timeout`` in all:
        redis-py may try several servers in turn (cluster nodes, sentinels), each for up
        to ``timeout``, when the network fails."""
        return await io.deadlines.bounded(operation, self._expired)

    def _expired(self) -> Exception:
        return redis.TimeoutError(f"no answer within {self._timeout:g} s")

    async def _aio(self) -> AsyncIO | None:
        """The async driver for the running loop; ``None`` means: hop to a thread."""
        if self._per_loop is None:
            return self._fixed
        opened = await self._per_loop.get()
        return None if opened is None else opened[0]


def _check_client(client: object, kinds: tuple[type, ...], option: str) -> None:
    if client is None:
        return
    if not isinstance(client, kinds):
        names = " or ".join(f"{kind.__module__}.{kind.__qualname__}" for kind in kinds)
        raise TypeError(f"RedisStore {option}= must be a {names}, not {type(client).__name__}")
    if client.get_connection_kwargs().get("decode_responses"):  # type: ignore[attr-defined]
        raise ValueError(f"RedisStore needs a {option} with decode_responses=False")


def _foreign(exc: redis.ResponseError) -> Exception:
    """A key of another type under our prefix reads as unreadable; other errors raise."""
    if str(exc).startswith("WRONGTYPE"):
        return exc
    raise exc


async def _aclose(opened: tuple[AsyncIO, Callable[[], Awaitable[None]]]) -> None:
    await opened[1]()
