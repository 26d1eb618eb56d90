"""The demo's flows clicked through in Chromium: login, cart, preferences, tools, tabs, logout.

After each step the page must show the expected session data, and show it again after a
reload (the data came back from the store, not from the response that changed it).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.browser.helpers import (
    NO_SESSION,
    Screenshots,
    assert_replay_is_anonymous,
    press,
    session_cookie,
    session_data,
    set_cookie_header,
    submit,
    text,
)

pytestmark = pytest.mark.browser


def cookie_value(context: BrowserContext, demo_url: str) -> str:
    cookie = session_cookie(context, demo_url)
    assert cookie is not None, "the browser holds no session cookie"
    return cookie["value"]


def cart(page: Page) -> dict[str, str]:
    """The cart table: item name to quantity."""
    rows: dict[str, str] = {}
    for row in page.locator("#cart tr[data-item]").all():
        name = row.get_attribute("data-item")
        assert name is not None
        rows[name] = row.locator("td").nth(1).inner_text().strip()
    return rows


def reload_shows(page: Page, key: str, data: dict[str, str]) -> None:
    """A reload shows the same session: same key, same data, the flash gone."""
    page.reload()
    assert page.locator("#flash").count() == 0
    assert text(page, "session-key") == key
    assert session_data(page) == data


def test_login_rotates_the_key_and_the_old_cookie_is_anonymous(
    context: BrowserContext, page: Page, demo_url: str, screenshots: Screenshots
) -> None:
    page.goto("/")
    page.goto("/login")
    assert text(page, "nav-user") == "Not signed in"
    before = text(page, "session-key")
    old_cookie = cookie_value(context, demo_url)
    assert old_cookie == before

    response = submit(page, "login", username="ann")
    assert set_cookie_header(response) is not None
    after = text(page, "session-key")
    assert text(page, "key-before") == before
    assert text(page, "key-after") == after
    assert after != before
    assert cookie_value(context, demo_url) == after
    assert text(page, "flash-message").startswith("Logged in as ann.")
    assert text(page, "nav-user") == "Signed in as ann"
    assert "You are logged in as ann" in text(page, "login-state")
    data = {"username": '"ann"', "visits": "1"}  # the data survived the rotation
    assert session_data(page) == data
    screenshots(page, "login")
    reload_shows(page, after, data)

    assert_replay_is_anonymous(context, demo_url, old_cookie)
    reload_shows(page, after, data)  # the replay did not disturb the live session


def test_cart_add_and_remove(
    context: BrowserContext, page: Page, demo_url: str, screenshots: Screenshots
) -> None:
    page.goto("/cart")
    assert page.locator("#cart-empty").is_visible()

    submit(page, "cart-add", name="apple", quantity="2")
    assert cart(page) == {"apple": "2"}
    key = text(page, "session-key")
    assert key != NO_SESSION
    assert cookie_value(context, demo_url) == key
    reload_shows(page, key, {"cart": '{"apple": 2}'})

    submit(page, "cart-add", name="pear", quantity="1")
    submit(page, "cart-add", name="apple", quantity="1")
    assert text(page, "flash-message") == "Added 1 x apple; the cart now has 3."
    assert cart(page) == {"apple": "3", "pear": "1"}
    screenshots(page, "cart")
    reload_shows(page, key, {"cart": '{"apple": 3, "pear": 1}'})
    assert cart(page) == {"apple": "3", "pear": "1"}

    submit(page, "cart-remove", name="apple")
    assert text(page, "flash-message") == "Removed apple (quantity 3) with cart.pop()."
    assert cart(page) == {"pear": "1"}
    reload_shows(page, key, {"cart": '{"pear": 1}'})

    submit(page, "cart-remove", name="kiwi")
    assert "No 'kiwi' in the cart" in text(page, "flash-message")
    assert cart(page) == {"pear": "1"}

    press(page, '#cart tr[data-item="pear"] button')  # the row's own Remove button
    assert cart(page) == {}
    assert page.locator("#cart-empty").is_visible()
    reload_shows(page, key, {"cart": "{}"})

    submit(page, "cart-empty")
    reload_shows(page, key, {})
    assert cookie_value(context, demo_url) == key


def test_preferences_set_change_delete(context: BrowserContext, page: Page, demo_url: str) -> None:
    page.goto("/preferences")

    submit(page, "pref-set", key="theme", value="light")
    assert text(page, "flash-message") == "Set theme = 'light'."
    key = text(page, "session-key")
    reload_shows(page, key, {"theme": '"light"'})
    assert page.locator("body").get_attribute("class") is None

    submit(page, "pref-set", key="theme", value="dark")
    assert text(page, "flash-message") == "Changed theme: 'light' → 'dark'."
    assert page.locator("body").get_attribute("class") == "dark"
    reload_shows(page, key, {"theme": '"dark"'})
    assert page.locator("body").get_attribute("class") == "dark"

    submit(page, "pref-set", key="language", value="fr")
    reload_shows(page, key, {"language": '"fr"', "theme": '"dark"'})

    submit(page, "pref-del", key="theme")
    assert text(page, "flash-message") == "Deleted 'theme' with del session['theme']."
    reload_shows(page, key, {"language": '"fr"'})
    assert page.locator("body").get_attribute("class") is None

    submit(page, "pref-del", key="theme")
    assert text(page, "flash-message").startswith("No such key 'theme'")
    reload_shows(page, key, {"language": '"fr"'})
    assert cookie_value(context, demo_url) == key


def test_clear_keeps_the_key_and_create_changes_it(
    context: BrowserContext, page: Page, demo_url: str, screenshots: Screenshots
) -> None:
    page.goto("/login")
    submit(page, "login", username="ann")
    page.goto("/cart")
    submit(page, "cart-add", name="apple", quantity="1")
    page.goto("/tools")
    key = text(page, "session-key")
    assert text(page, "tools-session-key") == key
    assert text(page, "check-exists") == "True"
    assert text(page, "get-default") == '"ann"'

    submit(page, "clear")
    assert text(page, "flash-message") == "clear() removed 2 keys; the session keeps its key."
    assert text(page, "key-before") == text(page, "key-after") == key
    assert text(page, "check-exists") == "False"
    assert text(page, "get-default") == "'Guest'"
    assert text(page, "nav-user") == "Not signed in"
    reload_shows(page, key, {})
    assert cookie_value(context, demo_url) == key

    page.goto("/preferences")
    submit(page, "pref-set", key="theme", value="dark")
    page.goto("/tools")
    submit(page, "create")
    new_key = text(page, "session-key")
    assert text(page, "key-before") == key
    assert text(page, "key-after") == new_key
    assert new_key != key
    assert text(page, "tools-session-key") == new_key
    assert cookie_value(context, demo_url) == new_key
    assert session_data(page) == {"theme": '"dark"'}  # create() keeps the data
    screenshots(page, "tools")
    reload_shows(page, new_key, {"theme": '"dark"'})

    assert_replay_is_anonymous(context, demo_url, key)


def test_two_tabs_share_one_session(context: BrowserContext, page: Page, demo_url: str) -> None:
    page.goto("/")  # stores the visit counter: the session starts
    other = context.new_page()
    other.goto("/cart")
    key = text(other, "session-key")
    assert key != NO_SESSION
    page.reload()
    assert text(page, "session-key") == key

    page.goto("/cart")
    submit(page, "cart-add", name="apple", quantity="2")
    assert cart(other) == {}  # not until it reloads
    other.reload()
    assert cart(other) == {"apple": "2"}
    assert session_data(other) == {"cart": '{"apple": 2}', "visits": "2"}

    other.goto("/login")
    submit(other, "login", username="ann")
    new_key = text(other, "session-key")
    assert new_key != key
    page.reload()
    assert text(page, "nav-user") == "Signed in as ann"
    assert text(page, "session-key") == new_key
    assert cart(page) == {"apple": "2"}

    page.goto("/logout")
    submit(page, "logout")
    other.reload()
    assert text(other, "session-key") == NO_SESSION
    assert text(other, "nav-user") == "Not signed in"
    assert session_data(other) == {}


def test_logout_drops_the_cookie_and_the_old_value_is_anonymous(
    context: BrowserContext, page: Page, demo_url: str
) -> None:
    page.goto("/login")
    submit(page, "login", username="bob")
    page.goto("/cart")
    submit(page, "cart-add", name="apple", quantity="2")
    key = text(page, "session-key")
    old_cookie = cookie_value(context, demo_url)

    page.goto("/logout")
    assert "logged in as bob" in text(page, "logout-state")
    response = submit(page, "logout")
    header = set_cookie_header(response)
    assert header is not None
    assert "max-age=0" in header.lower()
    assert page.url == f"{demo_url}/login"
    assert text(page, "flash-message").startswith("Logged out")
    assert text(page, "key-before") == key
    assert text(page, "key-after") == NO_SESSION
    assert text(page, "session-key") == NO_SESSION
    assert text(page, "nav-user") == "Not signed in"
    assert session_data(page) == {}
    assert session_cookie(context, demo_url) is None  # the browser no longer holds it

    page.goto("/about")  # reading pages do not bring it back
    assert session_cookie(context, demo_url) is None
    assert text(page, "session-key") == NO_SESSION

    assert_replay_is_anonymous(context, demo_url, old_cookie)


def test_title_active_tab_icon_and_not_found_page(page: Page) -> None:
    page.goto("/")
    assert page.title() == "sessionware demo"
    page.goto("/login")
    assert page.locator("#nav-login").get_attribute("class") == "active"
    submit(page, "login", username="ann")
    assert page.title() == "Log in · sessionware demo"
    # Logged in, the account tab reads "Log out" and is still the highlighted one.
    assert page.locator("nav a.active").all_inner_texts() == ["Log out"]

    icon = page.goto("/favicon.ico")
    assert icon is not None
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")

    missing = page.goto("/no-such-page")
    assert missing is not None
    assert missing.status == 404
    assert text(page, "page-title") == "Page not found"
    assert page.title() == "Page not found · sessionware demo"
    assert text(page, "nav-user") == "Signed in as ann"  # the demo's own layout
