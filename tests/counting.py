"""A real store wrapped to count the calls the middleware makes (not a mock: it delegates)."""

from __future__ import annotations

from collections import Counter

from sessionware.stores.base import Change, Finding, Loaded, Progress, Record, SessionStore, Written

WRITES = ("insert", "update", "delete", "rotate", "renew")


class CountingStore(SessionStore):
    """Counts each operation, whichever colour (sync or async) is called."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.max_data_bytes = inner.max_data_bytes

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in WRITES)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()

    def load(self, key: str, now: float) -> Loaded:
        self.calls["load"] += 1
        return self.inner.load(key, now)

    def insert(self, key: str, record: Record) -> bool:
        self.calls["insert"] += 1
        return self.inner.insert(key, record)

    def update(self, key: str, change: Change, now: float) -> Written:
        self.calls["update"] += 1
        return self.inner.update(key, change, now)

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        self.calls["delete"] += 1
        return self.inner.delete(key, now, stale_until)

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        self.calls["rotate"] += 1
        return self.inner.rotate(key, new_key, record, now, stale_until)

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        self.calls["renew"] += 1
        return self.inner.renew(key, new_key, now, grace_until)

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        return self.inner.clear_expired(now, progress)

    def count_expired(self, now: float | None = None) -> int:
        return self.inner.count_expired(now)

    def check(self) -> list[Finding]:
        return self.inner.check()

    async def aload(self, key: str, now: float) -> Loaded:
        self.calls["load"] += 1
        return await self.inner.aload(key, now)

    async def ainsert(self, key: str, record: Record) -> bool:
        self.calls["insert"] += 1
        return await self.inner.ainsert(key, record)

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        self.calls["update"] += 1
        return await self.inner.aupdate(key, change, now)

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        self.calls["delete"] += 1
        return await self.inner.adelete(key, now, stale_until)

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        self.calls["rotate"] += 1
        return await self.inner.arotate(key, new_key, record, now, stale_until)

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        self.calls["renew"] += 1
        return await self.inner.arenew(key, new_key, now, grace_until)

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        return await self.inner.aclear_expired(now, progress)

    async def acount_expired(self, now: float | None = None) -> int:
        return await self.inner.acount_expired(now)
