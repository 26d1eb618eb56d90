"""A real store that can be switched to fail, as a store whose server went away does.

The outage tests on real dead servers live in ``test_outage``; this one lets a test pick
the moment (a load succeeds, the save after it fails) without timing a server's death.
"""

from __future__ import annotations

from sessionware import SessionStoreError
from sessionware.stores.base import Change, Loaded, Record, Written
from tests.counting import CountingStore


class SwitchableStore(CountingStore):
    """Delegates to the wrapped store, or raises ``SessionStoreError`` for the operations
    named in ``failing`` (sync and async alike)."""

    failing: frozenset[str] = frozenset()

    def fail(self, *operations: str) -> None:
        self.failing = frozenset(operations)

    def _check(self, operation: str) -> None:
        if operation in self.failing:
            raise SessionStoreError(f"test store failed in {operation}: connection refused")

    def load(self, key: str, now: float) -> Loaded:
        self._check("load")
        return super().load(key, now)

    def insert(self, key: str, record: Record) -> bool:
        self._check("insert")
        return super().insert(key, record)

    def update(self, key: str, change: Change, now: float) -> Written:
        self._check("update")
        return super().update(key, change, now)

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        self._check("delete")
        return super().delete(key, now, stale_until)

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        self._check("rotate")
        return super().rotate(key, new_key, record, now, stale_until)

    async def aload(self, key: str, now: float) -> Loaded:
        self._check("load")
        return await super().aload(key, now)

    async def ainsert(self, key: str, record: Record) -> bool:
        self._check("insert")
        return await super().ainsert(key, record)

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        self._check("update")
        return await super().aupdate(key, change, now)
