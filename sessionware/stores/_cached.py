"""CachedStore: Django's cached_db, a fast cache in front of the store that holds the truth."""

from __future__ import annotations

import math

from .._errors import SessionStoreError
from .._flow import Delete, Renew, Rotate, Update, run_async, run_sync
from .._records import Change, Loaded, Record, SessionInfo
from .._store import DEFAULT_STALE_WINDOW, Finding, Progress, SessionStore, Written
from ._cached_flows import CacheFlows
from ._cached_health import CacheHealth


class CachedStore(CacheFlows, SessionStore):
    """Sessions in ``store`` (the truth), with short-lived copies in ``cache``, a faster
    store every process shares (``RedisStore``; ``MemoryStore`` for one process only).

    Cost: a hit is one cache round trip and no store round trip; a miss is one cache and
    one store round trip, plus one cache write (the fill). Every write goes to the store
    first, then *seals* the key in the cache: one round trip, two where nothing was
    cached. A new session (``insert``) touches the store alone: the cache only ever
    holds what a load read from the store, never a copy written through.

    Seals and fills: a seal replaces the cached copy with a marker that lasts
    ``seal_for`` (0.5 s); a load that finds it reads the store and leaves the cache alone.
    A load fills the cache only where it found nothing, and only if its store read came
    back within ``fill_deadline`` (0.2 s) of its cache read. So a load that read the
    store before a write cannot fill after that write's seal: the seal outlasts the
    fill deadline. A revocation seals the ended sessions' copies through the cache's own
    per-user index, at once and again ``seal_for`` later, for a copy filled by a load
    that read the store just before it (revocations take ``seal_for`` longer for it); a
    cache without a per-user index never holds a copy of a session that has a user.

    Lifetimes: a copy carries the store's ``expires_at``, is never served past it, and
    the cache forgets it ``cache_ttl`` (30 s) after the fill, whatever else fails.

    What another process may see (the exact bounds):

    - while the cache answers, every completed write (save, ``set_expiry``, logout,
      login, renewal, revocation) is seen at once by every CachedStore, this one and
      others: no load serves a copy older than the last completed write;
    - when a seal fails (the cache is down, stalled, or refuses writes), the write still
      succeeds: logins, logouts and revocations never fail for the cache. This
      CachedStore reads that key (or that user's sessions) from the store until it has
      made the seal good, which it does at its first operation once the cache answers
      (the cache is retried ``cache_retry_after``, 5 s, after a failure). Another
      process may serve the old copy until then, and for at most ``cache_ttl`` after
      the failed seal, plus ``fill_deadline``: a logged-out session may be served by
      another process for at most that long after a cache failure;
    - these hold while the cache keeps markers until they expire (no eviction under
      memory pressure) and no process stalls for longer than ``seal_for -
      fill_deadline`` between deciding a fill and sending it, nor drifts that far from
      the others' clocks.

    Outages: a cache failure never fails a request; loads and writes go to the store
    alone, the cache is skipped for ``cache_retry_after`` seconds, and one WARNING is
    logged per outage. A store failure raises ``SessionStoreError`` (503), as with the
    store alone, and seals the key, since the write may still land.

    Processes: every CachedStore over one store must use the same cache. A component
    kept in one process (``shared = False``, as ``MemoryStore``) is refused unless
    ``single_process=True`` declares that one process alone uses the store.
    ``clear_expired`` purges the store, and the cache for its per-user index (its
    ``progress`` and its count are the store's); ``count_expired`` counts the store's.
    """

    #: Seconds the cache is skipped after it failed.
    cache_retry_after: float = 5.0
    #: The longest a load's store read may take for its result to be cached.
    fill_deadline: float = 0.2
    #: Seconds a seal lasts (and a revocation waits to seal again): more than
    #: ``fill_deadline``, with room for a stalled process and for clock skew.
    seal_for: float = 0.5

    def __init__(
        self,
        cache: SessionStore,
        store: SessionStore,
        *,
        cache_ttl: float = 30.0,
        single_process: bool = False,
    ) -> None:
        _check_part("cache", cache)
        _check_part("store", store)
        if cache is store:
            raise ValueError("CachedStore needs two different stores: cache and store")
        if not store.supports_users:
            raise TypeError(
                f"{type(store).__name__} keeps no per-user index: it cannot be the store "
                "of a CachedStore"
            )
        for name, part in (("cache", cache), ("store", store)):
            if not part.shared and not single_process:
                raise ValueError(
                    f"CachedStore {name} {type(part).__name__} keeps sessions in one "
                    "process: other processes would serve sessions it ended. Use a "
                    "shared store, or pass single_process=True if one process alone "
                    "serves this store"
                )
        if isinstance(cache_ttl, bool) or not isinstance(cache_ttl, int | float):
            raise TypeError(f"cache_ttl must be a number of seconds, not {cache_ttl!r}")
        if not (math.isfinite(cache_ttl) and cache_ttl > 0):
            raise ValueError(f"cache_ttl must be a positive number of seconds, not {cache_ttl}")
        self.cache = cache
        self.store = store
        self.cache_ttl = float(cache_ttl)
        self.single_process = single_process
        self.max_data_bytes = store.max_data_bytes
        self._health = CacheHealth()

    # -- the operations ---------------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        return run_sync(self._load(key, now), self)

    def insert(self, key: str, record: Record) -> bool:
        return run_sync(self._insert(key, record), self)

    def update(self, key: str, change: Change, now: float) -> Written:
        return run_sync(self._write(key, Update(key, change, now), now), self)

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        return run_sync(self._write(key, Delete(key, now, stale_until), now), self)

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return run_sync(self._write(key, Rotate(key, new_key, record, now, stale_until), now), self)

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return run_sync(self._write(key, Renew(key, new_key, now, grace_until), now), self)

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        return run_sync(self._clear_expired(now, progress), self)

    def count_expired(self, now: float | None = None) -> int:
        return self.store.count_expired(now)

    def check(self) -> list[Finding]:
        """The store's findings, then the cache's; a cache that cannot be reached is a
        finding (requests are then served by the store alone), a store that cannot be
        reached raises."""
        findings = [(f"store {what}", found) for what, found in self.store.check()]
        try:
            cached = self.cache.check()
        except SessionStoreError as exc:
            cached = [("", f"unreachable, the store serves alone ({exc})")]
        return findings + [(f"cache {what}".rstrip(), found) for what, found in cached]

    def close(self) -> None:
        try:
            self.cache.close()
        finally:
            self.store.close()

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        return self.store.user_sessions(user_id, now)

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        return run_sync(self._revoke_session(user_id, session_id, now, stale_for), self)

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return run_sync(self._revoke_user(user_id, except_key, now, stale_for), self)

    # -- async twins: the same flows on the components' async twins -------------------------

    async def aload(self, key: str, now: float) -> Loaded:
        return await run_async(self._load(key, now), self)

    async def ainsert(self, key: str, record: Record) -> bool:
        return await run_async(self._insert(key, record), self)

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        return await run_async(self._write(key, Update(key, change, now), now), self)

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        return await run_async(self._write(key, Delete(key, now, stale_until), now), self)

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        flow = self._write(key, Rotate(key, new_key, record, now, stale_until), now)
        return await run_async(flow, self)

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return await run_async(self._write(key, Renew(key, new_key, now, grace_until), now), self)

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        return await run_async(self._clear_expired(now, progress), self)

    async def acount_expired(self, now: float | None = None) -> int:
        return await self.store.acount_expired(now)

    async def aclose(self) -> None:
        try:
            await self.cache.aclose()
        finally:
            await self.store.aclose()

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        return await self.store.auser_sessions(user_id, now)

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        return await run_async(self._revoke_session(user_id, session_id, now, stale_for), self)

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return await run_async(self._revoke_user(user_id, except_key, now, stale_for), self)


def _check_part(name: str, part: object) -> None:
    """A component must be a server-side store with sync methods (the CachedStore's own
    flags cannot follow its components')."""
    if not isinstance(part, SessionStore):
        raise TypeError(f"CachedStore {name} must be a SessionStore, not {type(part).__name__}")
    if not part.server_side:
        raise TypeError(
            f"{type(part).__name__} keeps no sessions on the server: it cannot be the "
            f"{name} of a CachedStore"
        )
    if not part.supports_sync:
        raise TypeError(
            f"{type(part).__name__} offers async methods only: it cannot be the {name} "
            "of a CachedStore"
        )
