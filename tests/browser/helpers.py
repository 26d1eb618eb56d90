"""Driving the demo in Chromium: launching, submitting its forms, reading what it shows.

The demo's stable element ids (``session-key``, ``flash-message``, ``<name>-form`` with
``<name>-button``, session rows with ``data-key``…) are the only markup relied on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Cookie, Page, Playwright, Response, ViewportSize

SESSION_COOKIE = "sessionid"
FLASH_COOKIE = "sessionware_demo_flash"
NO_SESSION = "none (no stored session)"  # what #session-key shows without a stored session
VIEWPORT: ViewportSize = {"width": 1100, "height": 800}
TIMEOUT_MS = 10_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    # Nothing beyond the demo on 127.0.0.1: every other host name fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def launch(driver: Playwright, chromium: str, profile: Path, base_url: str) -> BrowserContext:
    """Chromium on the profile directory ``profile`` (a fresh one when it does not exist yet)."""
    context = driver.chromium.launch_persistent_context(
        profile,
        executable_path=chromium,
        headless=True,
        args=CHROMIUM_ARGS,
        base_url=base_url,
        viewport=VIEWPORT,
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    return context


@contextmanager
def second_browser(context: BrowserContext, base_url: str) -> Iterator[BrowserContext]:
    """Another browser context: its own, empty cookie jar, as on another machine."""
    browser = context.browser
    assert browser is not None
    other = browser.new_context(base_url=base_url, viewport=VIEWPORT)
    other.set_default_timeout(TIMEOUT_MS)
    try:
        yield other
    finally:
        other.close()


def text(page: Page, ident: str) -> str:
    """The text of the element with ``id=ident``."""
    return page.locator(f"#{ident}").inner_text().strip()


def session_data(page: Page) -> dict[str, str]:
    """The session panel: each key with its value as the page shows it (JSON)."""
    data: dict[str, str] = {}
    for row in page.locator("#session-data tr[data-key]").all():
        key = row.get_attribute("data-key")
        assert key is not None
        data[key] = row.locator("td").nth(1).inner_text().strip()
    return data


def cookies(context: BrowserContext, base_url: str) -> dict[str, Cookie]:
    """The cookies the browser would send to the demo, by name."""
    return {cookie["name"]: cookie for cookie in context.cookies(base_url)}


def session_cookie(context: BrowserContext, base_url: str) -> Cookie | None:
    """The session cookie as the browser holds it, or ``None``."""
    return cookies(context, base_url).get(SESSION_COOKIE)


def set_cookie_header(response: Response, name: str = SESSION_COOKIE) -> str | None:
    """The raw ``Set-Cookie`` line for cookie ``name`` the browser received, or ``None``."""
    for header in response.headers_array():
        if header["name"].lower() == "set-cookie" and header["value"].startswith(f"{name}="):
            return header["value"]
    return None


def submit(page: Page, form: str, **fields: str) -> Response:
    """Fill ``#<form>-form`` by field name, press ``#<form>-button``; returns the POST's answer.

    Waits until the page the action redirects to (303) has loaded.
    """
    for name, value in fields.items():
        page.locator(f"#{form}-form [name='{name}']").fill(value)
    return press(page, f"#{form}-button")


def press(page: Page, button: str) -> Response:
    """Click the submit button ``button`` (a selector) and follow the redirect-after-post."""
    with (
        page.expect_response(lambda r: r.request.method == "POST") as posted,
        page.expect_navigation() as landed,
    ):
        page.locator(button).click()
    assert posted.value.status == 303, posted.value.status
    final = landed.value
    assert final is not None
    assert final.status == 200, final.status
    return posted.value


def expires_in(cookie: Cookie) -> float:
    """Seconds from now until the browser drops ``cookie`` (negative: a session cookie)."""
    return cookie["expires"] - time.time() if cookie["expires"] >= 0 else -1.0


def assert_replay_is_anonymous(context: BrowserContext, base_url: str, value: str) -> None:
    """A second browser that sends the cookie value ``value`` gets an anonymous session.

    The key was ended moments ago, so it is a stale key (API.md §5): the response leaves
    that browser's cookie alone, and the page says the cookie names no live session.
    """
    with second_browser(context, base_url) as other:
        other.add_cookies([{"name": SESSION_COOKIE, "value": value, "url": base_url}])
        assert session_cookie(other, base_url) is not None  # the replay really sends it
        stolen = other.new_page()
        stolen.goto("/tools")
        assert text(stolen, "session-key") == NO_SESSION
        assert text(stolen, "tools-session-key") == "None"
        assert text(stolen, "check-exists") == "False"
        assert text(stolen, "get-default") == "'Guest'"
        assert text(stolen, "nav-user") == "Not signed in"
        assert session_data(stolen) == {}
        assert stolen.locator("#session-ended").is_visible()
        replayed = session_cookie(other, base_url)
        assert replayed is not None
        assert replayed["value"] == value


class Screenshots:
    """Saves a page's screenshot under one name into every directory it was given."""

    def __init__(self, directories: list[Path]) -> None:
        self.directories = directories

    def __call__(self, page: Page, name: str) -> None:
        image = page.screenshot(full_page=True, animations="disabled")
        for directory in self.directories:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / f"{name}.png").write_bytes(image)
