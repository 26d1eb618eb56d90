"""``CachedStore``'s logic, written once as flows (see ``_flow``): every component call is
a typed operation aimed with ``Via`` at the cache or the store, so ``run_sync`` and
``run_async`` perform the same steps and mypy checks each call and its result.

The rules (argued in ``CachedStore``'s docstring):

- the store is asked first for every write, and what it answers is the answer;
- a write then *seals* the key in the cache; a load that finds a seal reads the store
  and does not fill;
- a load fills the cache only where it found nothing, and only if its store read came
  back within ``fill_deadline`` of its cache read;
- a cache failure never fails an operation: the seal is owed (``_cached_health``) and
  made good at a later operation, once the cache answers.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Generator
from typing import Any, Literal, TypeVar

from .._errors import SessionStoreError
from .._flow import Delete, Flow, Insert, Load, Op, Via, perform
from .._records import Loaded, Moved, Record
from .._store import Progress, SessionStore, Written, now_or, user_text
from ._cached_entries import Found, copy_of, copy_size, read_entry, seal_record
from ._cached_health import CacheHealth, Debt, SessionDebt, UserDebt
from ._cached_ops import ClearExpired, Pause, RevokeSession, RevokeUser

R = TypeVar("R")

#: Owed seals made good per operation once the cache is back, so that the first
#: requests after an outage are not held up by all of them.
SETTLE_PER_OPERATION = 16


class _Down(enum.Enum):
    DOWN = "the cache failed"


DOWN = _Down.DOWN


class CacheFlows:
    """The flows; ``CachedStore`` provides the components and the settings."""

    cache: SessionStore
    store: SessionStore
    cache_ttl: float
    fill_deadline: float
    seal_for: float
    cache_retry_after: float
    _health: CacheHealth

    # -- loads ------------------------------------------------------------------------------

    def _load(self, key: str, now: float) -> Flow[Loaded]:
        yield from self._settle(now)
        asked = time.monotonic()
        found: Record | Found = Found.SEALED  # the cache not asked: read the store, no fill
        if self._health.trusts(key):
            loaded = yield from self._ask_cache(Load(key, now))
            if loaded is not DOWN:
                found = read_entry(loaded)
        if isinstance(found, Record):
            if found.expires_at > now and self._health.trusts_user(found.user):
                return found
            found = Found.SEALED
        stored = yield from perform(Via(self.store, Load(key, now)))
        if (
            found is Found.MISS
            and isinstance(stored, Record)
            and time.monotonic() - asked <= self.fill_deadline
        ):
            yield from self._fill(key, stored, now)
        return stored

    def _fill(self, key: str, record: Record, now: float) -> Flow[None]:
        if record.user is not None and not self.cache.supports_users:
            return  # revocations could not find this copy in the cache
        limit = self.cache.max_data_bytes
        copy = copy_of(record, now, self.cache_ttl)
        if copy is None or (limit is not None and copy_size(record) > limit):
            return
        if (yield from self._ask_cache(Insert(key, copy))) is DOWN:
            self._owe(key)  # the fill may still land, and be stale by then

    # -- writes -----------------------------------------------------------------------------

    def _insert(self, key: str, record: Record) -> Flow[bool]:
        # A new key: nothing is cached under it, and nothing is written through (a copy
        # only ever comes from a load, so a racing revocation cannot miss it).
        yield from self._settle(time.time())
        return (yield from perform(Via(self.store, Insert(key, record))))

    def _write(self, key: str, op: Op[Written], now: float) -> Flow[Written]:
        """``op`` on the store, then a seal on ``key`` (update, delete, rotate, renew)."""
        yield from self._settle(now)
        try:
            done = yield from perform(Via(self.store, op))
        except SessionStoreError:
            yield from self._seal(key, now)  # the write may still land
            raise
        if not isinstance(done, Moved):  # a renewed key was sealed by its renewal
            yield from self._seal(key, now)
        return done

    def _seal(self, key: str, now: float) -> Flow[None]:
        if not (yield from self._sealed(key, now)):
            self._owe(key)

    def _sealed(self, key: str, now: float) -> Flow[bool]:
        """Leave a seal under ``key`` until ``seal_for`` from now; whether the cache took
        it. A copy becomes a ``Stale`` marker; where there is none, a seal is inserted;
        if something took the key meanwhile (a fill), it is sealed in turn."""
        if not self._health.usable():
            return False
        until = max(now, time.time()) + self.seal_for
        ended = yield from self._ask_cache(Delete(key, now, until))
        if ended is True:
            return True
        if ended is DOWN:
            return False
        inserted = yield from self._ask_cache(Insert(key, seal_record(now, until)))
        if inserted is True:
            return True
        if inserted is DOWN:
            return False
        # Neither a copy nor room for a seal: a fill came in between (sealed now), or a
        # marker holds the key, which is a seal already.
        return (yield from self._ask_cache(Delete(key, now, until))) is not DOWN

    # -- the per-user index -----------------------------------------------------------------

    def _revoke_user(
        self, user_id: str | int, except_key: str | None, now: float | None, stale_for: float
    ) -> Flow[int]:
        user, at = user_text(user_id), now_or(now)
        revoke = RevokeUser(user, except_key, at, stale_for)
        ended = yield from self._revoke(revoke, UserDebt(user, except_key), at)
        return ended

    def _revoke_session(
        self, user_id: str | int, session_id: str, now: float | None, stale_for: float
    ) -> Flow[bool]:
        user, at = user_text(user_id), now_or(now)
        revoke = RevokeSession(user, session_id, at, stale_for)
        ended = yield from self._revoke(revoke, SessionDebt(user, session_id), at)
        return ended

    def _revoke(self, op: Op[R], debt: UserDebt | SessionDebt, now: float) -> Flow[R]:
        yield from self._settle(now)
        try:
            ended = yield from perform(Via(self.store, op))
        except SessionStoreError:
            yield from self._seal_user(debt, now)  # the revocation may still land
            raise
        if ended:
            yield from self._seal_user(debt, now)
        return ended

    def _seal_user(self, debt: UserDebt | SessionDebt, now: float) -> Flow[None]:
        """Seal the cached copies a revocation ended, through the cache's own per-user
        index; then once more after ``seal_for``, for a copy filled by a load that read
        the store before the revocation (it fills within ``fill_deadline`` or never)."""
        if not self.cache.supports_users:
            return  # such a cache never holds a copy of a session that has a user
        if (yield from self._sealed_user(debt, now)):
            yield from perform(Pause(self.seal_for))
            if (yield from self._sealed_user(debt, now)):
                return
        self._owe(debt)

    def _sealed_user(self, debt: UserDebt | SessionDebt, now: float) -> Flow[bool]:
        if not self._health.usable():
            return False
        stale_for = max(now, time.time()) - now + self.seal_for
        if isinstance(debt, UserDebt):
            revoke = RevokeUser(debt.user, debt.except_key, now, stale_for)
            return (yield from self._ask_cache(revoke)) is not DOWN
        one = RevokeSession(debt.user, debt.session_id, now, stale_for)
        return (yield from self._ask_cache(one)) is not DOWN

    # -- housekeeping -----------------------------------------------------------------------

    def _clear_expired(self, now: float | None, progress: Progress | None) -> Flow[int]:
        at = now_or(now)
        removed = yield from perform(Via(self.store, ClearExpired(at, progress)))
        if self._health.usable():  # a cache that expires entries itself finds little
            yield from self._ask_cache(ClearExpired(at))
        return removed

    def _settle(self, now: float) -> Flow[None]:
        """Make good a few owed seals, if any and the cache is worth trying."""
        if not self._health.owes or not self._health.usable():
            return
        for debt in self._health.debts(SETTLE_PER_OPERATION):
            if isinstance(debt, str):
                done = yield from self._sealed(debt, now)
            else:  # long after the revocation: no fill can still be on its way
                done = yield from self._sealed_user(debt, now)
            if not done:
                return
            self._health.settled(debt)

    def _owe(self, debt: Debt) -> None:
        # Every copy an owed seal covers was filled before it, or within the fill
        # deadline after: the cache drops them all within cache_ttl of that.
        self._health.owe(debt, self.cache_ttl + self.fill_deadline + self.seal_for)

    def _ask_cache(self, op: Op[R]) -> Generator[Op[Any], Any, R | Literal[_Down.DOWN]]:
        """One cache operation: its result, or ``DOWN`` if the cache failed (logged once
        per outage; the cache is skipped for ``cache_retry_after`` seconds)."""
        try:
            result = yield from perform(Via(self.cache, op))
        except SessionStoreError as exc:
            self._health.failed(exc, self.cache_retry_after)
            return DOWN
        self._health.answered()
        return result
