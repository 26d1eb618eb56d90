"""Logins and logouts racing a page's background requests, in Chromium (API.md §5).

A page keeps requests in flight that write to the session (a CSRF token, a cart line):
some began before the login or logout and load the old session; others the browser
sends after the server has ended the old key but before the browser has the response
that says so, so they still carry that key. Whatever order their responses arrive in,
the browser must end up with what the login or logout gave it.

The server holds the login's (logout's) response back (``Gate``) until the late requests
have reached it, so each race runs the same way every time; nothing waits on a clock.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, Response

from tests.browser.helpers import (
    NO_SESSION,
    SESSION_COOKIE,
    session_cookie,
    session_data,
    set_cookie_header,
    submit,
    text,
)
from tests.browser.served import ServedDemo

pytestmark = pytest.mark.browser

EARLY = ("early-1", "early-2")  # begin before the login (logout) and load the old session
LATE = ("late-1", "late-2")  # sent while its response is held: they carry the ended key
# Two of each, plus the held POST: five connections, under Chromium's six per host, so
# the browser never queues one of them behind another.


def fire(page: Page, names: tuple[str, ...]) -> None:
    """Start a slow writing fetch per name, without waiting for any."""
    page.evaluate(
        """names => {
            window.slow = window.slow || [];
            for (const name of names) {
                const url = '/slow/write?name=' + encodeURIComponent(name);
                window.slow.push(fetch(url, {method: 'POST'}).then(r => r.status));
            }
        }""",
        list(names),
    )


def settle(page: Page) -> list[int]:
    """Wait for every fetch ``fire`` started; their statuses."""
    statuses: list[int] = page.evaluate("() => Promise.all(window.slow)")
    return statuses


def watch_slow_writes(page: Page) -> list[Response]:
    """The slow writers' responses, as the browser receives them."""
    seen: list[Response] = []
    page.on("response", lambda r: seen.append(r) if "/slow/write" in r.url else None)
    return seen


def race(
    served: ServedDemo, page: Page, held_path: str, press_in_other_tab: Callable[[], None]
) -> None:
    """Early writers load the session; ``press_in_other_tab`` posts to ``held_path``; the
    late writers are sent while its response is held (the store is already changed, the
    browser does not know yet); then everything is let go and settles."""
    fire(page, EARLY)
    served.writers.wait_loaded(*EARLY)
    served.gate.hold(held_path)
    press_in_other_tab()
    served.gate.wait_held()
    fire(page, LATE)
    served.writers.wait_loaded(*LATE)
    served.gate.release()
    assert settle(page) == [200] * (len(EARLY) + len(LATE))


def test_a_login_survives_slow_writers_and_requests_sent_before_the_new_cookie(
    served_context: BrowserContext, served_demo: ServedDemo
) -> None:
    page = served_context.new_page()  # the page whose background requests write
    page.goto("/cart")
    submit(page, "cart-add", name="apple", quantity="2")
    old_key = text(page, "session-key")
    responses = watch_slow_writes(page)
    tab = served_context.new_page()  # the user logs in in another tab meanwhile
    tab.goto("/login")
    tab.locator("#username").fill("ann")

    race(
        served_demo,
        page,
        "/login",
        lambda: tab.locator("#login-button").click(no_wait_after=True),
    )
    tab.locator("#key-after").wait_for()
    new_key = text(tab, "key-after")
    assert text(tab, "key-before") == old_key
    assert new_key not in (old_key, NO_SESSION)

    # The race ran as intended: the early writers loaded the logged-out session under the
    # old key; the late ones carried that key after the login had ended it (a stale key)
    # and so got an empty session, never the old data.
    for name in EARLY:
        assert served_demo.writers.loaded[name].key == old_key
    for name in LATE:
        assert served_demo.writers.loaded[name].key is None
        assert served_demo.writers.loaded[name].data == {}

    # What this guards. Under the previous rule ("a dropped save deletes the cookie") the
    # early writers, whose saves are dropped because the login rotated their key away,
    # answered `sessionid=""; Max-Age=0` after the login's response: browsers delete
    # cookies by name, so the new key went and the user was logged out. Before stale keys,
    # the late writers created fresh sessions whose cookies overwrote the login. Now none
    # of them says anything about the session cookie, and the browser keeps the new key.
    cookie = session_cookie(served_context, served_demo.url)
    assert cookie is not None, "the browser lost the login's cookie"
    assert cookie["value"] == new_key
    page.reload()
    assert text(page, "nav-user") == "Signed in as ann"
    assert text(page, "session-key") == new_key
    # The login kept the data; the writes that raced it were dropped, not merged into it.
    assert session_data(page) == {"cart": '{"apple": 2}', "username": '"ann"'}
    assert len(responses) == len(EARLY) + len(LATE)
    for response in responses:
        assert set_cookie_header(response, SESSION_COOKIE) is None, response.url


def test_a_logout_stays_logged_out_despite_slow_writers(
    served_context: BrowserContext, served_demo: ServedDemo
) -> None:
    page = served_context.new_page()
    page.goto("/login")
    submit(page, "login", username="bob")
    key = text(page, "session-key")
    responses = watch_slow_writes(page)
    tab = served_context.new_page()
    tab.goto("/logout")

    race(
        served_demo,
        page,
        "/logout",
        lambda: tab.locator("#logout-button").click(no_wait_after=True),
    )
    tab.locator("#key-after").wait_for()
    assert text(tab, "key-before") == key
    assert text(tab, "key-after") == NO_SESSION

    for name in EARLY:
        assert served_demo.writers.loaded[name].key == key
        assert served_demo.writers.loaded[name].data == {"username": "bob"}
    for name in LATE:
        assert served_demo.writers.loaded[name].key is None

    # No writer brought the session back (its saves were dropped) or started a new one
    # (the ended key is stale, not unknown): none sent a session cookie, and the browser
    # holds none.
    assert session_cookie(served_context, served_demo.url) is None
    page.reload()
    assert text(page, "nav-user") == "Not signed in"
    assert text(page, "session-key") == NO_SESSION
    assert session_data(page) == {}
    assert len(responses) == len(EARLY) + len(LATE)
    for response in responses:
        assert set_cookie_header(response, SESSION_COOKIE) is None, response.url
