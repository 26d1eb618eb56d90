"""The operations ``CachedStore``'s flows need beyond the lifecycle's (``_flow``): the
per-user index, the purge, and a pause, each typed by its result."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio

from .._flow import Op
from .._store import Progress, SessionStore


@dataclass(frozen=True, slots=True)
class RevokeUser(Op[int]):
    user_id: str
    except_key: str | None
    now: float
    stale_for: float

    def call(self, store: SessionStore) -> int:
        return store.revoke_user(self.user_id, self.except_key, self.now, self.stale_for)

    async def acall(self, store: SessionStore) -> int:
        return await store.arevoke_user(self.user_id, self.except_key, self.now, self.stale_for)


@dataclass(frozen=True, slots=True)
class RevokeSession(Op[bool]):
    user_id: str
    session_id: str
    now: float
    stale_for: float

    def call(self, store: SessionStore) -> bool:
        return store.revoke_session(self.user_id, self.session_id, self.now, self.stale_for)

    async def acall(self, store: SessionStore) -> bool:
        return await store.arevoke_session(self.user_id, self.session_id, self.now, self.stale_for)


@dataclass(frozen=True, slots=True)
class ClearExpired(Op[int]):
    now: float
    progress: Progress | None = None

    def call(self, store: SessionStore) -> int:
        return store.clear_expired(self.now, self.progress)

    async def acall(self, store: SessionStore) -> int:
        return await store.aclear_expired(self.now, self.progress)


@dataclass(frozen=True, slots=True)
class Pause(Op[None]):
    """Wait ``seconds`` (a thread sleeps; a task yields to its event loop)."""

    seconds: float

    def call(self, store: SessionStore) -> None:
        time.sleep(self.seconds)

    async def acall(self, store: SessionStore) -> None:
        await anyio.sleep(self.seconds)
