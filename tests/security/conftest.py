"""Fixtures of the security suite: server stores, a controllable clock, a private Redis,
and the fuzz summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware.stores.base import SessionStore
from tests.security.fuzzing import TALLY
from tests.security.support import Clock
from tests.stores.factories import make_store


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """``time.time`` everywhere returns ``clock.now`` until ``clock.advance()`` moves it.

    Patched on the ``time`` module itself, so the middlewares, the lifecycle, the session
    and the stores all see the same controlled time.
    """
    controlled = Clock(float(int(time.time())))
    monkeypatch.setattr(time, "time", controlled)
    return controlled


SERVER_STORE_KINDS = ["memory", "file", "sqlite", "redis", "cached"]


@pytest.fixture(params=SERVER_STORE_KINDS)
def server_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """Each server-side store (Redis ones skip locally, fail under CI, without a server)."""
    with make_store(request.param, tmp_path) as store:
        yield store


class _FuzzSummary:
    """Prints the fuzz count in the terminal summary (registered by ``fuzz_summary``)."""

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if TALLY.inputs:
            terminalreporter.write_line(TALLY.summary())


@pytest.fixture(scope="session", autouse=True)
def fuzz_summary(request: pytest.FixtureRequest) -> None:
    """Print how many generated inputs the fuzz tests ran, and how many failed.

    A ``pytest_terminal_summary`` hook in this (non-root) conftest would not run, and
    output written at fixture teardown is captured, so a plugin is registered instead.
    """
    manager = request.config.pluginmanager
    if not manager.has_plugin(_SUMMARY_PLUGIN):
        manager.register(_FuzzSummary(), _SUMMARY_PLUGIN)


_SUMMARY_PLUGIN = "sessionware-security-fuzz-summary"
