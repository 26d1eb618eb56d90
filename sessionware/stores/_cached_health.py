"""What one ``CachedStore`` knows of its cache: whether it is out, and the seals it owes.

A seal the cache did not take (an outage, a stall, a timeout) leaves a copy that may be
stale. Until the seal is made good, this CachedStore reads the store for that key (or
that user's sessions) instead of trusting the cache, and it makes the seal good at a
later operation, once the cache answers. A debt is forgotten when no copy it covers can
be alive any more (``cache_ttl`` after it was incurred, plus the fill deadline): the
cache has dropped them all by then.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .._errors import SessionStoreError

logger = logging.getLogger("sessionware")

#: Debts kept at most; past that, the cache is not trusted at all until they would have
#: been forgotten, so memory stays bounded and no stale copy is served here meanwhile.
MAX_DEBTS = 100_000


@dataclass(frozen=True, slots=True)
class UserDebt:
    """The cached copies of ``user``'s sessions (all but ``except_key``) to seal."""

    user: str
    except_key: str | None


@dataclass(frozen=True, slots=True)
class SessionDebt:
    """The cached copy of the session of ``user`` whose public id is ``session_id``."""

    user: str
    session_id: str


Debt = str | UserDebt | SessionDebt  # a str is a session key


class CacheHealth:
    """The outage state and the owed seals of one CachedStore, shared by its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._debts: dict[Debt, float] = {}  # debt -> monotonic time it is forgotten
        self._users: dict[str, float] = {}  # users with an owed seal -> until when
        self._retry_at = 0.0  # monotonic: the cache is skipped before this
        self._distrust_until = 0.0  # monotonic: no cached copy is served before this
        self._outage = False

    # -- outages ---------------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether to try the cache now (not within ``retry_after`` of a failure)."""
        return time.monotonic() >= self._retry_at

    def failed(self, error: SessionStoreError, retry_after: float) -> None:
        self._retry_at = time.monotonic() + retry_after
        if not self._outage:
            self._outage = True
            logger.warning(
                "sessionware: session cache unavailable, using the store alone: %s", error
            )

    def answered(self) -> None:
        if self._outage:
            self._outage = False
            logger.info("sessionware: session cache available again")

    # -- trust -----------------------------------------------------------------------------

    def trusts(self, key: str) -> bool:
        """Whether a copy under ``key`` may be served (its seal is not owed)."""
        now = time.monotonic()
        if now < self._retry_at or now < self._distrust_until:
            return False
        return not self._debts or self._debts.get(key, 0.0) <= now

    def trusts_user(self, user: str | None) -> bool:
        """Whether a copy of a session of ``user`` may be served (no owed revocation)."""
        return user is None or not self._users or self._users.get(user, 0.0) <= time.monotonic()

    # -- debts -----------------------------------------------------------------------------

    @property
    def owes(self) -> bool:
        return bool(self._debts)

    def owe(self, debt: Debt, lasting: float) -> None:
        """Remember a seal the cache did not take, for ``lasting`` seconds."""
        until = time.monotonic() + lasting
        with self._lock:
            if len(self._debts) >= MAX_DEBTS:
                self._distrust_until = max(self._distrust_until, until)
                self._debts.clear()
                self._users.clear()
                return
            self._debts[debt] = max(until, self._debts.get(debt, 0.0))
            if not isinstance(debt, str):
                self._users[debt.user] = max(until, self._users.get(debt.user, 0.0))

    def debts(self, limit: int) -> list[Debt]:
        """Up to ``limit`` debts to settle now (the forgotten ones are dropped)."""
        now = time.monotonic()
        with self._lock:
            for debt in [debt for debt, until in self._debts.items() if until <= now]:
                del self._debts[debt]
            for user in [user for user, until in self._users.items() if until <= now]:
                del self._users[user]
            return list(self._debts)[:limit]

    def settled(self, debt: Debt) -> None:
        """The seal was made good: trust the cache for it again."""
        with self._lock:
            self._debts.pop(debt, None)
            if not isinstance(debt, str) and not any(
                not isinstance(other, str) and other.user == debt.user for other in self._debts
            ):
                self._users.pop(debt.user, None)
