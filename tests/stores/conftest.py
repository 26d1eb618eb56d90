"""Fixtures of the store tests."""

from __future__ import annotations

import sys
import time

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _current_now() -> None:
    """Re-read the clock the store tests call ``NOW`` before each test: Redis and
    Memcached expire entries by their own clock, so a ``NOW`` read at import would drift
    into the past over a long run and entries written as "live for a minute" would
    already be gone."""
    now = time.time()
    for name, module in list(sys.modules.items()):
        if name.startswith("tests.stores.") and hasattr(module, "NOW"):
            vars(module)["NOW"] = now
