"""Headless Chromium (Debian's ``/usr/bin/chromium``) and the demo served by uvicorn.

One ``sessionware demo`` process (SQLite in a scratch directory) and one Playwright
driver serve the whole package; every test gets its own browser, started on a fresh
profile directory, so no cookie leaks from one test into the next. Tests that race
requests or need a chosen store use ``served_demo`` instead: the demo in this process,
on SQLite or Redis, with slow writers and a gate (``served.py``). Without Chromium the
tests skip with the reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright

from tests.browser.helpers import Screenshots, launch
from tests.browser.served import ServedDemo, serve_demo
from tests.servers import in_ci
from tests.stores.factories import make_store

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS_ENV = "SESSIONWARE_SCREENSHOTS"
ROOT = Path(__file__).resolve().parents[2]  # the checkout under test


@pytest.fixture(scope="package")
def chromium() -> str:
    """The browser's path; skips (locally) or fails (CI=true) when it is not installed."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"{CHROMIUM} is missing: install Debian's chromium package "
        "(apt-get install chromium; bash .ci/run does it when run as root)"
    )
    if in_ci():
        pytest.fail(message + " (CI=true: the browser tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="package")
def driver(chromium: str) -> Iterator[Playwright]:
    """Playwright's driver; its sync API runs its own event loop, so the tests stay sync."""
    del chromium  # requested only so that a missing browser skips before anything starts
    started = sync_playwright().start()
    try:
        yield started
    finally:
        started.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="package")
def demo_url(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m sessionware demo`` on a free port of 127.0.0.1, on its own SQLite file."""
    del chromium
    directory = tmp_path_factory.mktemp("browser-demo")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # An unsigned cookie, as a plain `sessionware demo` gives: its value is the key shown.
    env = {name: value for name, value in os.environ.items() if name != "SESSIONWARE_SECRET_KEY"}
    # This checkout's sessionware, whatever an installed copy elsewhere may be.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sessionware", "demo"]
    command += ["--store", f"sqlite:///{directory / 'demo.db'}", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    log_path = directory / "demo.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).text == "ok":
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("the demo did not start:\n" + log_path.read_text())
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def profile(tmp_path: Path) -> Path:
    """This test's fresh browser profile directory."""
    return tmp_path / "chromium-profile"


@pytest.fixture
def context(
    driver: Playwright, chromium: str, demo_url: str, profile: Path
) -> Iterator[BrowserContext]:
    """A browser of its own for this test, on a fresh profile; relative URLs go to the demo."""
    browser = launch(driver, chromium, profile, demo_url)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(params=["sqlite", "redis"])
def served_demo(
    request: pytest.FixtureRequest, chromium: str, tmp_path: Path
) -> Iterator[ServedDemo]:
    """The demo in this process on a fresh SQLite or Redis store, for this test alone."""
    del chromium
    with make_store(request.param, tmp_path) as store, serve_demo(request.param, store) as served:
        yield served


@pytest.fixture
def served_context(
    driver: Playwright, chromium: str, served_demo: ServedDemo, profile: Path
) -> Iterator[BrowserContext]:
    """A browser of its own for this test, whose relative URLs go to ``served_demo``."""
    browser = launch(driver, chromium, profile, served_demo.url)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """The browser's first tab."""
    return context.pages[0] if context.pages else context.new_page()


@pytest.fixture
def screenshots(tmp_path: Path) -> Screenshots:
    """Saves pages into ``tmp_path``, and into ``$SESSIONWARE_SCREENSHOTS`` when it is set."""
    directories = [tmp_path / "screenshots"]
    extra = os.environ.get(SCREENSHOTS_ENV)
    if extra:
        directories.append(Path(extra))
    return Screenshots(directories)
