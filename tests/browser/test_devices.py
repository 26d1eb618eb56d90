"""The "Your devices" page in Chromium: one user signed in from two browsers (API.md §9).

Each browser is a context of its own (its own cookie jar, as on another machine), both
on one demo server, on SQLite and on Redis.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import (
    Screenshots,
    press,
    second_browser,
    session_cookie,
    session_data,
    submit,
    text,
)
from tests.browser.served import ServedDemo

pytestmark = pytest.mark.browser


def log_in(page: Page, username: str) -> str:
    """Log in on ``page``; the new session key."""
    page.goto("/login")
    submit(page, "login", username=username)
    assert text(page, "nav-user") == f"Signed in as {username}"
    return text(page, "session-key")


def device_ids(page: Page) -> list[str]:
    """The ids the devices table lists, in its order."""
    ids = []
    for row in page.locator("#devices tr[data-device]").all():
        ident = row.get_attribute("data-device")
        assert ident is not None
        ids.append(ident)
    return ids


def this_device(page: Page) -> str:
    """The id of the row marked "this device"."""
    ident = page.locator("#devices tr.current").get_attribute("data-device")
    assert ident is not None
    assert page.locator("#devices tr.current #this-device").count() == 1
    return ident


def test_sign_out_everywhere_else_ends_the_other_browser_only(
    served_context: BrowserContext, served_demo: ServedDemo, screenshots: Screenshots
) -> None:
    first = served_context.new_page()
    first_key = log_in(first, "ann")
    with second_browser(served_context, served_demo.url) as other:
        second = other.new_page()
        second_key = log_in(second, "ann")
        second_cookie = session_cookie(other, served_demo.url)
        assert second_cookie is not None

        first.goto("/devices")
        assert text(first, "devices-count") == "2"
        listed = device_ids(first)
        assert len(set(listed)) == 2
        mine = this_device(first)
        second.goto("/devices")
        theirs = this_device(second)
        assert {mine, theirs} == set(listed)
        table = first.locator("#devices").inner_html()
        assert first_key not in table  # ids are handles, never keys
        assert second_key not in table
        first.goto("/devices")
        if served_demo.kind == "sqlite":  # the other screenshots show the SQLite demo too
            screenshots(first, "devices")

        press(first, "#revoke-others-button")
        assert text(first, "flash-message").startswith("Signed out 1 other device")
        assert text(first, "revoked-count") == "1"
        assert device_ids(first) == [mine]

        second.goto("/cart")  # the second browser's next page: signed out
        assert text(second, "nav-user") == "Not signed in"
        assert session_data(second) == {}
        assert first.locator("#session-ended").count() == 0
        assert second.locator("#session-ended").is_visible()
        # Its key is stale now: the response left its cookie alone (a newer one might
        # have been on its way), and the key names nothing any more.
        assert session_cookie(other, served_demo.url) == second_cookie
        second.goto("/devices")
        assert second.locator("#devices-signed-out").is_visible()

    first.reload()
    assert text(first, "nav-user") == "Signed in as ann"
    assert text(first, "session-key") == first_key
    assert device_ids(first) == [mine]


def test_sign_out_one_device_by_its_row_then_this_one(
    served_context: BrowserContext, served_demo: ServedDemo
) -> None:
    first = served_context.new_page()
    log_in(first, "bob")
    with second_browser(served_context, served_demo.url) as other:
        second = other.new_page()
        log_in(second, "bob")
        second.goto("/devices")
        theirs = this_device(second)

        first.goto("/devices")
        mine = this_device(first)
        press(first, f'#devices tr[data-device="{theirs}"] button')
        assert text(first, "flash-message").startswith("Signed out that device")
        assert device_ids(first) == [mine]
        second.reload()
        assert text(second, "nav-user") == "Not signed in"
        assert second.locator("#devices-signed-out").is_visible()

    press(first, f'#devices tr[data-device="{mine}"] button')  # this device: a logout
    assert text(first, "flash-message").startswith("Signed out this device")
    assert text(first, "nav-user") == "Not signed in"
    assert session_cookie(served_context, served_demo.url) is None
