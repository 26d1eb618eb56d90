"""The conformance kit judges a store written outside sessionware (API.md §8).

``TestShelfStore`` is how a store's author runs the kit: a subclass and a ``store``
fixture. The last test shows the kit can fail: its concurrency test, run by hand on a
store that saves by blind overwrite, raises the assertion that would fail that suite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from examples.shelf_store import BlindShelfStore, ShelfStore
from sessionware.testing.conformance import Ops, StoreConformance


class TestShelfStore(StoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ShelfStore]:
        store = ShelfStore(tmp_path / "sessions")
        yield store
        store.close()


def run_concurrency_test(store: ShelfStore, mode: str) -> None:
    """The kit's ``test_concurrent_updates_of_distinct_keys_all_survive`` on ``store``,
    with the fixtures it asks for built by hand."""
    test = StoreConformance().test_concurrent_updates_of_distinct_keys_all_survive
    anyio.run(partial(test, ops=Ops(store, mode), now=time.time()))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_kit_fails_a_store_that_saves_by_blind_overwrite(tmp_path: Path, mode: str) -> None:
    good, blind = ShelfStore(tmp_path / "good"), BlindShelfStore(tmp_path / "blind")
    try:
        run_concurrency_test(good, mode)  # the same test, the same harness: it passes
        with pytest.raises(AssertionError):
            run_concurrency_test(blind, mode)
    finally:
        good.close()
        blind.close()
