"""The store fixture: every store kind x {sync, async}, through one driver interface."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware._records import Change, Record
from sessionware.stores.base import SessionStore
from tests.stores.factories import ALL_KINDS, make_store


@pytest.fixture(autouse=True)
def _current_now() -> None:
    """Re-read the clock the store tests call ``NOW`` before each test: Redis expires
    records by its own clock, so a ``NOW`` read at import would drift into the past over a
    long run and records written as "live for a minute" would already be gone."""
    now = time.time()
    for name, module in list(sys.modules.items()):
        if name.startswith("tests.stores.") and hasattr(module, "NOW"):
            vars(module)["NOW"] = now


class Driver:
    """Calls a store's sync methods or their async twins, so one test covers both."""

    def __init__(self, store: SessionStore, mode: str) -> None:
        self.store = store
        self.mode = mode

    async def load(self, key: str, now: float) -> Record | None:
        if self.mode == "sync":
            return self.store.load(key, now)
        return await self.store.aload(key, now)

    async def create(self, key: str, record: Record) -> bool:
        if self.mode == "sync":
            return self.store.create(key, record)
        return await self.store.acreate(key, record)

    async def update(self, key: str, change: Change, now: float) -> bool:
        if self.mode == "sync":
            return self.store.update(key, change, now)
        return await self.store.aupdate(key, change, now)

    async def delete(self, key: str) -> bool:
        if self.mode == "sync":
            return self.store.delete(key)
        return await self.store.adelete(key)

    async def clear_expired(self, now: float | None = None) -> int:
        if self.mode == "sync":
            return self.store.clear_expired(now)
        return await self.store.aclear_expired(now)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=ALL_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(params=["sync", "async"])
def driver(request: pytest.FixtureRequest, store_kind: str, tmp_path: Path) -> Iterator[Driver]:
    with make_store(store_kind, tmp_path) as store:
        yield Driver(store, request.param)
