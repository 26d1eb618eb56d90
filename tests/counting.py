"""A real store wrapped to count the calls the middleware makes (not a mock: it delegates)."""

from __future__ import annotations

from collections import Counter

from sessionware._records import Change, Record
from sessionware.stores.base import SessionStore


class CountingStore(SessionStore):
    """Counts ``load``/``create``/``update``/``delete`` whichever colour is called."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    @property  # type: ignore[override]
    def serializer(self) -> object:
        return self.inner.serializer

    @serializer.setter
    def serializer(self, value: object) -> None:
        self.inner.serializer = value  # type: ignore[assignment]

    @property
    def writes(self) -> int:
        return self.calls["create"] + self.calls["update"] + self.calls["delete"]

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        self.calls.clear()

    def load(self, key: str, now: float) -> Record | None:
        self.calls["load"] += 1
        return self.inner.load(key, now)

    def create(self, key: str, record: Record) -> bool:
        self.calls["create"] += 1
        return self.inner.create(key, record)

    def update(self, key: str, change: Change, now: float) -> bool:
        self.calls["update"] += 1
        return self.inner.update(key, change, now)

    def delete(self, key: str) -> bool:
        self.calls["delete"] += 1
        return self.inner.delete(key)

    def clear_expired(self, now: float | None = None) -> int:
        return self.inner.clear_expired(now)

    async def aload(self, key: str, now: float) -> Record | None:
        self.calls["load"] += 1
        return await self.inner.aload(key, now)

    async def acreate(self, key: str, record: Record) -> bool:
        self.calls["create"] += 1
        return await self.inner.acreate(key, record)

    async def aupdate(self, key: str, change: Change, now: float) -> bool:
        self.calls["update"] += 1
        return await self.inner.aupdate(key, change, now)

    async def adelete(self, key: str) -> bool:
        self.calls["delete"] += 1
        return await self.inner.adelete(key)

    async def aclear_expired(self, now: float | None = None) -> int:
        return await self.inner.aclear_expired(now)
