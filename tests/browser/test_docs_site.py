"""The documentation site in a browser: built with ``mkdocs build --strict``, served from
127.0.0.1, read in headless Chromium.

``SESSIONWARE_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/browser/test_docs_site.py``
refreshes the committed screenshots of the home page and of a reference page.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, ViewportSize

from tests.browser.helpers import Screenshots, launch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser
WIDE: ViewportSize = {"width": 1400, "height": 900}  # Material shows its navigation from 1220


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, as ``mkdocs build --strict`` makes it from this checkout."""
    pytest.importorskip("mkdocs", reason="the docs tools: pip install -e '.[docs]'")
    directory = tmp_path_factory.mktemp("docs-site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return directory


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    """The built site served on a free port of 127.0.0.1."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def docs(
    driver: Playwright, chromium: str, site_url: str, profile: Path
) -> Iterator[BrowserContext]:
    browser = launch(driver, chromium, profile, site_url)
    try:
        yield browser
    finally:
        browser.close()


def heading(page: Page) -> str:
    """The page's title as shown, without the permalink sign."""
    return page.locator("article h1").first.inner_text().replace("\u00b6", "").strip()


def shoot(screenshots: Screenshots, page: Page, name: str) -> None:
    """The first screen of the page, wide enough for the navigation (a whole reference
    page would be a very long image)."""
    page.set_viewport_size(WIDE)
    image = page.screenshot(animations="disabled")
    for directory in screenshots.directories:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.png").write_bytes(image)


def test_home_page_links_every_guide(docs: BrowserContext, screenshots: Screenshots) -> None:
    page = docs.new_page()
    page.goto("/")
    assert page.title() == "sessionware"
    assert heading(page) == "sessionware"
    guides = page.locator("article table a").all_inner_texts()
    for guide in ("Getting started", "Choosing a store", "Configuration", "Security"):
        assert guide in guides
    page.locator("article table a", has_text="Getting started").click()
    page.wait_for_url("**/getting-started/")
    assert heading(page) == "Getting started"
    page.goto("/")
    shoot(screenshots, page, "docs-home")


def test_reference_page_shows_the_middleware_from_its_docstring(
    docs: BrowserContext, screenshots: Screenshots
) -> None:
    page = docs.new_page()
    page.goto("/reference/sessionware/")
    heading = page.locator("[id='sessionware.SessionMiddleware']")
    assert "SessionMiddleware" in heading.inner_text()
    article = page.locator("article").inner_text()
    assert 'Publishes scope["session"] for http and websocket scopes' in article
    assert "get_session(obj: Any) -> Session" in " ".join(article.split())
    shoot(screenshots, page, "docs-reference")


def test_rules_page_renders_every_rule_of_the_decision_table(docs: BrowserContext) -> None:
    page = docs.new_page()
    page.goto("/rules/")
    rules = page.locator("article table").first.locator("tbody tr td:first-child")
    assert rules.all_inner_texts() == [str(rule) for rule in range(1, 11)]
