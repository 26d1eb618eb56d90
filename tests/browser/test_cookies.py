"""The session cookie as Chromium holds it: when it appears, its attributes, its expiry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Playwright, Request

from tests.browser.helpers import (
    NO_SESSION,
    SESSION_COOKIE,
    Screenshots,
    cookies,
    expires_in,
    launch,
    second_browser,
    session_cookie,
    session_data,
    set_cookie_header,
    submit,
    text,
)

pytestmark = pytest.mark.browser

READING_PAGES = ["/about", "/tools", "/login", "/cart", "/preferences", "/test-cookie", "/expiry"]
DEFAULT_MAX_AGE = 1_209_600  # the middleware's default: two weeks
SLACK = 5  # seconds between the server's clock reading and the browser's


def test_no_cookie_until_something_is_stored(
    context: BrowserContext, page: Page, demo_url: str, screenshots: Screenshots
) -> None:
    for path in READING_PAGES:
        response = page.goto(path)
        assert response is not None
        assert response.status == 200
        assert set_cookie_header(response) is None
        assert text(page, "session-key") == NO_SESSION
        assert session_data(page) == {}
        assert cookies(context, demo_url) == {}, path

    page.goto("/")  # the home page stores its visit counter: now the session starts
    assert text(page, "visits") == "1"
    cookie = session_cookie(context, demo_url)
    assert cookie is not None
    page.reload()
    assert text(page, "visits") == "2"
    key = text(page, "session-key")
    assert len(key) >= 22
    assert cookie["value"] == key  # the browser holds the key the page shows (unsigned demo)
    assert session_data(page) == {"visits": "2"}
    screenshots(page, "home")

    response = page.goto("/about")  # reading an existing session sends no cookie again
    assert response is not None
    assert set_cookie_header(response) is None
    assert text(page, "session-key") == key


def test_the_test_cookie_check_reports_that_cookies_work(
    context: BrowserContext, page: Page, demo_url: str
) -> None:
    page.goto("/test-cookie")
    submit(page, "set-test-cookie")
    assert page.url == f"{demo_url}/test-cookie/check"
    assert text(page, "test-cookie-worked") == "True"
    assert text(page, "test-cookie-result") == "Your browser accepts cookies."
    assert session_data(page) == {"testcookie": '"worked"'}

    with second_browser(context, demo_url) as other:  # never did step 1: nothing came back
        fresh = other.new_page()
        fresh.goto("/test-cookie/check")
        assert text(fresh, "test-cookie-worked") == "False"
        assert "does not accept cookies" in text(fresh, "test-cookie-result")

    submit(page, "delete-test-cookie")
    assert text(page, "flash-message") == "delete_test_cookie() removed the test cookie."
    page.goto("/test-cookie/check")
    assert text(page, "test-cookie-worked") == "False"


def test_cookie_attributes_as_the_browser_sees_them(
    context: BrowserContext, page: Page, demo_url: str
) -> None:
    response = page.goto("/")
    assert response is not None
    header = set_cookie_header(response)
    assert header is not None
    # Playwright reports a Chromium cookie without SameSite as "Lax" too: read the wire as well.
    attributes = {part.strip().lower() for part in header.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= attributes
    assert "secure" not in attributes
    assert not any(attribute.startswith("domain=") for attribute in attributes)

    held = [cookie for cookie in context.cookies(demo_url) if cookie["name"] == SESSION_COOKIE]
    assert len(held) == 1
    cookie = held[0]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert cookie["secure"] is False
    assert abs(expires_in(cookie) - DEFAULT_MAX_AGE) <= SLACK

    # HttpOnly, in practice: the page's scripts can neither read nor overwrite the cookie.
    assert SESSION_COOKIE not in page.evaluate("document.cookie")
    page.evaluate(f"document.cookie = '{SESSION_COOKIE}=forged; path=/'")
    held = [cookie for cookie in context.cookies(demo_url) if cookie["name"] == SESSION_COOKIE]
    assert [cookie["value"] for cookie in held] == [cookie["value"]]
    page.reload()
    assert text(page, "visits") == "2"


def test_same_site_lax_in_practice(context: BrowserContext, page: Page, demo_url: str) -> None:
    """From another site: a link to the demo carries the cookie, a form post does not."""
    page.goto("/login")
    submit(page, "login", username="ann")
    key = text(page, "session-key")

    # localhost and 127.0.0.1 are different sites; the page is served by Playwright itself.
    other_site = demo_url.replace("127.0.0.1", "localhost") + "/elsewhere"
    markup = (
        f'<a id="link" href="{demo_url}/tools">the demo</a>'
        f'<form method="post" action="{demo_url}/cart/add"><input name="name" value="spam">'
        '<input name="quantity" value="1"><button id="post">post</button></form>'
    )
    context.route(other_site, lambda route: route.fulfill(content_type="text/html", body=markup))

    def sent_cookie(request: Request) -> str:
        return request.all_headers().get("cookie", "")

    page.goto(other_site)
    with page.expect_request(f"{demo_url}/tools") as followed:
        page.locator("#link").click()
    assert f"{SESSION_COOKIE}={key}" in sent_cookie(followed.value)  # Lax, not Strict
    page.wait_for_load_state()
    assert text(page, "nav-user") == "Signed in as ann"

    page.goto(other_site)
    with page.expect_request(f"{demo_url}/cart/add") as posted:
        page.locator("#post").click()
    assert SESSION_COOKIE not in sent_cookie(posted.value)  # Lax: no cookie on a cross-site POST
    page.wait_for_load_state()
    page.goto("/cart")
    assert "cart" not in session_data(page)
    assert text(page, "session-key") == key


def test_set_expiry_reaches_the_browser(
    context: BrowserContext, page: Page, demo_url: str, screenshots: Screenshots
) -> None:
    page.goto("/")
    page.goto("/expiry")

    response = submit(page, "expiry-zero")
    header = set_cookie_header(response)
    assert header is not None
    assert "max-age" not in header.lower()
    assert "expires" not in header.lower()
    cookie = session_cookie(context, demo_url)
    assert cookie is not None
    assert cookie["expires"] == -1  # a session cookie: gone when the browser closes
    assert text(page, "expiry-browser-close") == "True"

    for seconds in (300, 86_400):
        submit(page, "expiry-seconds", seconds=str(seconds))
        cookie = session_cookie(context, demo_url)
        assert cookie is not None
        assert abs(expires_in(cookie) - seconds) <= SLACK, (seconds, cookie)
        assert text(page, "expiry-age") == str(seconds)
        assert text(page, "expiry-browser-close") == "False"
        if seconds == 300:
            screenshots(page, "expiry")
    page.reload()
    assert 86_400 - SLACK <= int(text(page, "expiry-age")) <= 86_400

    when = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(days=2)
    submit(page, "expiry-date", when=when.strftime("%Y-%m-%dT%H:%M"))
    cookie = session_cookie(context, demo_url)
    assert cookie is not None
    assert abs(cookie["expires"] - when.timestamp()) <= SLACK
    assert dt.datetime.fromisoformat(text(page, "expiry-date")) == when

    submit(page, "expiry-default")
    cookie = session_cookie(context, demo_url)
    assert cookie is not None
    assert abs(expires_in(cookie) - DEFAULT_MAX_AGE) <= SLACK
    assert text(page, "expiry-age") == str(DEFAULT_MAX_AGE)
    assert session_data(page) == {"visits": "1"}  # the data rode along every change


def test_a_browser_session_cookie_ends_when_the_browser_closes(
    driver: Playwright, chromium: str, demo_url: str, tmp_path: Path
) -> None:
    """The same profile, restarted: a dated cookie survives, a set_expiry(0) one does not."""
    profile = tmp_path / "restarted-profile"

    def restart() -> tuple[BrowserContext, Page]:
        browser = launch(driver, chromium, profile, demo_url)
        return browser, browser.pages[0] if browser.pages else browser.new_page()

    browser, tab = restart()
    try:
        tab.goto("/expiry")
        submit(tab, "expiry-seconds", seconds="600")
        key = text(tab, "session-key")
    finally:
        browser.close()

    browser, tab = restart()
    try:
        cookie = session_cookie(browser, demo_url)
        assert cookie is not None  # written to the profile, read back
        assert cookie["value"] == key
        tab.goto("/expiry")
        assert text(tab, "session-key") == key
        submit(tab, "expiry-zero")
        assert text(tab, "session-key") == key
    finally:
        browser.close()

    browser, tab = restart()
    try:
        assert session_cookie(browser, demo_url) is None
        tab.goto("/tools")
        assert text(tab, "session-key") == NO_SESSION
    finally:
        browser.close()
