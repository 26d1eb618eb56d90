"""The demo site, driven like a browser: cookies kept, forms posted, redirects followed.

Each scenario runs on a server-side store (memory) and on the cookie store, except the
checks that an old key is dead, which only a server-side store can promise.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from sessionware.demo import create_app
from sessionware.stores import CookieStore, MemoryStore
from tests.demo_client import (
    BASE,
    SECRET,
    Demo,
    browser,
    has,
    post,
    session_cookie,
    text,
)
from tests.stores.factories import make_store

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[1]
GET_PAGES = [
    "/",
    "/login",
    "/logout",
    "/devices",
    "/cart",
    "/preferences",
    "/tools",
    "/test-cookie",
    "/test-cookie/check",
    "/expiry",
    "/about",
]
READ_ONLY_PAGES = [page for page in GET_PAGES if page != "/"]


@pytest.fixture(params=["memory", "cookie"])
def demo(request: pytest.FixtureRequest) -> Demo:
    if request.param == "memory":
        return Demo(create_app(MemoryStore()), server_side=True)
    return Demo(create_app(CookieStore(), secret_key=SECRET), server_side=False)


async def test_every_page_shows_nav_key_data_and_flash(demo: Demo) -> None:
    async with browser(demo) as client:
        for path in GET_PAGES:
            page = await client.get(path)
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["cache-control"] == "no-store"
            for ident in ("nav", "session-key", "session-data", "page-title"):
                assert f'id="{ident}"' in page.text
            title = re.search(r"<title>([^<]*)</title>", page.text)
            assert title is not None
            assert title.group(1).count("sessionware demo") == 1, title.group(1)
            assert '<link rel="icon" href="/favicon.svg"' in page.text
        page = await post(client, "/preferences/set", key="theme", value="light")
        assert text(page, "flash-message") == "Set theme = 'light'."
        again = await client.get("/preferences")
        assert 'id="flash"' not in again.text  # shown once


@pytest.mark.parametrize("path", [*READ_ONLY_PAGES, "/healthz"])
async def test_first_visit_to_a_reading_page_sets_no_cookie(demo: Demo, path: str) -> None:
    async with browser(demo) as client:
        page = await client.get(path)
        assert page.status_code == 200
        assert "set-cookie" not in page.headers
        assert not client.cookies
        if path != "/healthz":
            assert text(page, "session-key") == "none (no stored session)"


async def test_healthz_never_touches_the_session(demo: Demo) -> None:
    async with browser(demo) as client:
        await client.get("/")
        answer = await client.get("/healthz")
        assert answer.text == "ok"
        assert "set-cookie" not in answer.headers
        assert "vary" not in answer.headers


async def test_home_counts_visits_in_one_session(demo: Demo) -> None:
    async with browser(demo) as client:
        first = await client.get("/")
        assert text(first, "visits") == "1"
        assert session_cookie(first) is not None
        assert text(first, "session-key") == "none (no stored session)"
        second = await client.get("/")
        assert text(second, "visits") == "2"
        key = text(second, "session-key")
        assert len(key) >= 22
        assert text(await client.get("/"), "session-key") == key
        assert 'data-key="visits"' in second.text


async def test_login_rotates_the_key(demo: Demo) -> None:
    async with browser(demo) as client:
        await client.get("/")
        old_key = text(await client.get("/tools"), "session-key")
        old_cookie = client.cookies["sessionid"]
        page = await post(client, "/login", username="ann")
        assert session_cookie(page.history[0]) is not None
        new_key = text(page, "session-key")
        assert text(page, "key-before") == old_key
        assert text(page, "key-after") == new_key != old_key
        assert text(page, "nav-user") == "Signed in as ann"
        assert 'data-key="visits"' in page.text  # the data survived the rotation
        if demo.server_side:
            assert "the old key is now stale for 60 s" in text(page, "flash-message")
        else:
            assert "cannot revoke the old cookie" in text(page, "flash-message")
    if demo.server_side:
        async with browser(demo) as attacker:
            attacker.cookies.set("sessionid", old_cookie)
            stale = await attacker.get("/tools")
            assert text(stale, "check-exists") == "False"
            assert text(stale, "session-key") == "none (no stored session)"
            # A stale key (rotated away within stale_key_window): its response never
            # touches the cookie, which a parallel login may just have replaced; the page
            # says why the session is empty.
            assert session_cookie(stale) is None
            assert "stale key" in text(stale, "session-ended")


async def test_login_needs_a_username(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/login", username="   ")
        assert "Enter a username" in text(page, "flash-message")
        assert session_cookie(page.history[0]) is None


async def test_logout_flushes_and_deletes_the_cookie(demo: Demo) -> None:
    async with browser(demo) as client:
        await post(client, "/login", username="ann")
        cookie = client.cookies["sessionid"]
        key = text(await client.get("/tools"), "session-key")
        page = await post(client, "/logout")
        assert "Max-Age=0" in (session_cookie(page.history[0]) or "")
        assert "sessionid" not in client.cookies
        assert text(page, "key-before") == key
        assert text(page, "session-key") == "none (no stored session)"
        assert text(page, "nav-user") == "Not signed in"
        assert "set-cookie" not in (await client.get("/about")).headers
    if demo.server_side:
        async with browser(demo) as replay:
            replay.cookies.set("sessionid", cookie)
            assert text(await replay.get("/tools"), "check-exists") == "False"


async def test_cart_add_remove_empty(demo: Demo) -> None:
    async with browser(demo) as client:
        await post(client, "/cart/add", name="apple", quantity="2")
        await post(client, "/cart/add", name="pear", quantity="1")
        page = await post(client, "/cart/add", name="apple", quantity="1")
        assert "the cart now has 3" in text(page, "flash-message")
        assert re.search(r'data-item="apple"><td>apple</td><td>3<', page.text)
        page = await post(client, "/cart/remove", name="apple")
        assert text(page, "flash-message") == "Removed apple (quantity 3) with cart.pop()."
        assert 'data-item="apple"' not in page.text
        assert 'data-item="pear"' in page.text
        missing = await client.post("/cart/remove", data={"name": "kiwi"})
        assert session_cookie(missing) is None  # nothing changed, nothing saved
        page = await client.get("/cart")
        assert "No 'kiwi' in the cart" in text(page, "flash-message")
        page = await post(client, "/cart/empty")
        assert 'id="cart-empty"' in page.text
        assert 'data-key="cart"' not in page.text
        page = await post(client, "/cart/empty")
        assert "already empty" in text(page, "flash-message")
        page = await post(client, "/cart/add", name="fig", quantity="0")
        assert "quantity from 1 to 999" in text(page, "flash-message")


async def test_preferences_set_change_delete(demo: Demo) -> None:
    async with browser(demo) as client:
        await post(client, "/preferences/set", key="theme", value="light")
        page = await post(client, "/preferences/set", key="theme", value="dark")
        assert text(page, "flash-message") == "Changed theme: 'light' → 'dark'."
        assert '<body class="dark">' in page.text
        page = await post(client, "/preferences/delete", key="theme")
        assert text(page, "flash-message") == "Deleted 'theme' with del session['theme']."
        assert 'data-key="theme"' not in page.text
        page = await post(client, "/preferences/delete", key="theme")
        assert text(page, "flash-message").startswith("No such key 'theme'")
        await post(client, "/preferences/set", key="language", value="fr")
        page = await post(client, "/preferences/pop", key="language")
        assert "returned 'fr'" in text(page, "flash-message")
        page = await post(client, "/preferences/pop", key="language")
        assert "returned None, no error" in text(page, "flash-message")


async def test_user_values_are_escaped(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/login", username="<script>x</script>")
        assert "<script>" not in page.text
        assert "&lt;script&gt;" in page.text
        page = await post(client, "/preferences/set", key='"><b>', value="<i>")
        assert "<b>" not in page.text
        assert "<i>" not in page.text


async def test_tools_read_exists_and_get_default(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await client.get("/tools")
        assert text(page, "check-exists") == "False"
        assert text(page, "get-default") == "'Guest'"
        assert text(page, "tools-session-key") == "None"
        await post(client, "/login", username="ann")
        page = await client.get("/tools")
        assert text(page, "check-exists") == "True"
        assert text(page, "get-default") == '"ann"'
        assert text(page, "tools-session-key") == text(page, "session-key")


async def test_clear_keeps_the_key(demo: Demo) -> None:
    async with browser(demo) as client:
        await post(client, "/login", username="ann")
        key = text(await client.get("/tools"), "session-key")
        page = await post(client, "/tools/clear")
        assert text(page, "key-before") == text(page, "key-after") == key
        assert text(page, "session-key") == key
        assert 'id="session-empty"' in page.text
        assert "removed 1 key" in text(page, "flash-message")


async def test_create_changes_the_key_and_keeps_the_data(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/tools/create")  # no session yet: one starts at once
        assert text(page, "key-before") == "none"
        first = text(page, "key-after")
        assert text(page, "session-key") == first
        await post(client, "/login", username="ann")
        before = client.cookies["sessionid"]
        key = text(await client.get("/tools"), "session-key")
        page = await post(client, "/tools/create")
        assert text(page, "key-before") == key
        assert text(page, "key-after") == text(page, "session-key") != key
        assert text(page, "check-exists") == "True"
    if demo.server_side:
        async with browser(demo) as replay:
            replay.cookies.set("sessionid", before)
            assert text(await replay.get("/tools"), "check-exists") == "False"


async def test_flush_tool(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/tools/flush")
        assert "no stored session" in text(page, "flash-message")
        await post(client, "/cart/add", name="apple", quantity="1")
        page = await post(client, "/tools/flush")
        assert "Max-Age=0" in (session_cookie(page.history[0]) or "")
        assert 'id="session-empty"' in page.text


async def test_test_cookie_flow(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await client.get("/test-cookie/check")
        assert text(page, "test-cookie-worked") == "False"
        page = await post(client, "/test-cookie")
        assert page.url.path == "/test-cookie/check"
        assert text(page, "test-cookie-worked") == "True"
        assert "Your browser accepts cookies." in page.text
        page = await post(client, "/test-cookie/delete")
        assert text(page, "flash-message") == "delete_test_cookie() removed the test cookie."
        page = await client.get("/test-cookie/check")
        assert text(page, "test-cookie-worked") == "False"
        page = await post(client, "/test-cookie/delete")
        assert "KeyError" in text(page, "flash-message")


async def test_a_browser_refusing_cookies_is_told_so(demo: Demo) -> None:
    async with browser(demo) as client:
        response = await client.post("/test-cookie")
        assert session_cookie(response) is not None
    async with browser(demo) as refusing:  # a fresh jar: the cookie never came back
        page = await refusing.get("/test-cookie/check")
        assert text(page, "test-cookie-worked") == "False"
        assert "Your browser does not accept cookies" in page.text


async def test_expiry_choices_reach_the_cookie(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/expiry/browser-close")
        header = session_cookie(page.history[0]) or ""
        assert header
        assert "Max-Age" not in header
        assert "Expires" not in header
        assert text(page, "expiry-browser-close") == "True"

        page = await post(client, "/expiry/seconds", seconds="300")
        assert "Max-Age=300;" in (session_cookie(page.history[0]) or "")
        assert text(page, "expiry-age") == "300"
        assert text(page, "expiry-browser-close") == "False"

        when = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=1)
        page = await post(client, "/expiry/date", when=when.strftime("%Y-%m-%dT%H:%M"))
        max_age = re.search(r"Max-Age=(\d+)", session_cookie(page.history[0]) or "")
        assert max_age is not None
        assert abs(int(max_age.group(1)) - (when.timestamp() - time.time())) < 60
        shown = dt.datetime.fromisoformat(text(page, "expiry-date"))
        assert abs((shown - when).total_seconds()) <= 1  # get_expiry_date() is to the second

        page = await post(client, "/expiry/default")
        assert "Max-Age=1209600;" in (session_cookie(page.history[0]) or "")
        assert text(page, "expiry-age") == "1209600"


async def test_expiry_input_mistakes(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/expiry/seconds", seconds="-5")
        assert "whole number of seconds" in text(page, "flash-message")
        page = await post(client, "/expiry/date", when="soon")
        assert "Give a date" in text(page, "flash-message")
        page = await post(client, "/expiry/date", when="9999-12-31T23:59")
        assert page.status_code == 200  # beyond ten years: set_expiry's refusal, not a 500
        assert "ten years" in text(page, "flash-message")
        page = await post(client, "/expiry/date", when="2000-01-01T00:00")
        assert "has passed" in text(page, "flash-message")
        assert text(page, "session-key") == "none (no stored session)"


async def test_cross_site_posts_are_refused(demo: Demo) -> None:
    async with browser(demo) as client:
        response = await client.post(
            "/login", data={"username": "eve"}, headers={"Origin": "http://evil.example"}
        )
        assert response.status_code == 403
        assert session_cookie(response) is None
        same_site = await client.post("/login", data={"username": "ann"}, headers={"Origin": BASE})
        assert same_site.status_code == 303


# httpx's ASGI transport leaves its request body generator open when the app stops
# reading early (the 413); trio reports that at garbage collection. The app's side is closed.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_oversized_and_foreign_forms_are_refused(demo: Demo) -> None:
    async with browser(demo) as client:
        big = await client.post("/login", data={"username": "x" * 20_000})
        assert big.status_code == 413
        json_body = await client.post("/login", json={"username": "ann"})
        assert json_body.status_code == 415


async def test_a_forged_flash_cookie_is_ignored(demo: Demo) -> None:
    async with browser(demo) as client:
        client.cookies.set("sessionware_demo_flash", "not-base64!")
        page = await client.get("/about")
        assert page.status_code == 200
        assert 'id="flash"' not in page.text


async def test_the_page_title_names_the_site_once(demo: Demo) -> None:
    async with browser(demo) as client:
        assert "<title>sessionware demo</title>" in (await client.get("/")).text
        assert "<title>Log in · sessionware demo</title>" in (await client.get("/login")).text


def active_tab(page: httpx.Response) -> str:
    """The id of the one highlighted tab."""
    found = re.findall(r'<a href="[^"]*" id="(nav-[a-z-]+)" class="active"', page.text)
    assert len(found) == 1, found
    return str(found[0])


async def test_the_account_tab_is_highlighted_on_login_and_logout(demo: Demo) -> None:
    async with browser(demo) as client:
        assert active_tab(await client.get("/login")) == "nav-login"
        assert active_tab(await client.get("/logout")) == "nav-login"  # the tab says "Log in"
        assert active_tab(await client.get("/devices")) == "nav-devices"
        await post(client, "/login", username="ann")
        # Logged in, the same tab says "Log out"; it stays the active one on both pages.
        assert active_tab(await client.get("/login")) == "nav-logout"
        assert active_tab(await client.get("/logout")) == "nav-logout"
        assert active_tab(await client.get("/")) == "nav-home"


async def test_browser_close_expiry_explains_the_expiry_age(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await post(client, "/expiry/browser-close")
        assert text(page, "flash-expiry-age") == "1209600"
        assert "get_expiry_age() still says 1209600" in text(page, "flash-message")
        assert "default age (max_age)" in text(page, "flash-message")
        assert text(page, "expiry-browser-close") == "True"
        assert "reports the default age" in page.text
        assert has(page, "expiry-age-note")
        page = await post(client, "/expiry/seconds", seconds="300")
        assert not has(page, "expiry-age-note")


async def test_an_unknown_address_gets_a_404_page_in_the_layout(demo: Demo) -> None:
    async with browser(demo) as client:
        await client.get("/")
        page = await client.get("/no/such/<page>")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert text(page, "page-title") == "Page not found"
        assert "/no/such/&lt;page&gt;" in page.text  # the path, escaped
        assert has(page, "nav")
        assert "<title>Page not found · sessionware demo</title>" in page.text
        assert session_cookie(page) is None  # a 404 writes nothing
        assert not re.search(r'class="active"', page.text)


@pytest.mark.parametrize("path", ["/favicon.ico", "/favicon.svg"])
async def test_the_icon_is_served_without_a_session(demo: Demo, path: str) -> None:
    async with browser(demo) as client:
        await client.get("/")
        icon = await client.get(path)
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.text.startswith("<svg")
        assert "set-cookie" not in icon.headers
        assert "vary" not in icon.headers


async def test_a_cookie_naming_no_live_session_is_explained(demo: Demo) -> None:
    async with browser(demo) as client:
        await post(client, "/login", username="ann")
        cookie = client.cookies["sessionid"]
        assert not has(await client.get("/about"), "session-ended")
        await post(client, "/logout")
    async with browser(demo) as replay:
        if demo.server_side:
            replay.cookies.set("sessionid", cookie)  # the key logout ended: a stale key
        else:
            replay.cookies.set("sessionid", "not-a-signed-session")
        page = await replay.get("/about")
        assert text(page, "nav-user") == "Not signed in"
        note = text(page, "session-ended")
        if demo.server_side:
            assert "stale key" in note
            assert session_cookie(page) is None  # within the window: left alone
        else:
            assert "signature" in note
            assert "Max-Age=0" in (session_cookie(page) or "")


async def test_about_lists_how_keys_end(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await client.get("/about")
        if demo.server_side:
            assert "60 s" in page.text
            assert re.search(r'id="option-renew_after">.*?<code>off</code>', page.text)
            assert "--renew-after 30" in page.text
        else:
            assert "cannot remember ended keys" in page.text


async def test_renewal_when_turned_on() -> None:
    demo = Demo(create_app(MemoryStore(), renew_after=0.5), server_side=True)
    async with browser(demo) as client:
        await post(client, "/login", username="ann")
        about = await client.get("/about")
        assert re.search(r'id="option-renew_after">.*?<code>0.5 s</code>', about.text)
        old = client.cookies["sessionid"]
        await anyio.sleep(0.6)  # the key grows older than renew_after
        renewed = await client.get("/about")
        assert session_cookie(renewed) is not None  # a page that only reads, yet a new key
        new = client.cookies["sessionid"]
        assert new != old
    async with browser(demo) as late:  # a request still carrying the old key, in the grace
        late.cookies.set("sessionid", old)
        page = await late.get("/tools")
        assert text(page, "nav-user") == "Signed in as ann"
        assert text(page, "session-key") == new


@pytest.mark.parametrize("kind", ["file", "sqlite", "redis", "cached", "postgres", "mysql"])
async def test_walkthrough_on_every_server_side_store(kind: str, tmp_path: Path) -> None:
    with make_store(kind, tmp_path) as store:
        demo = Demo(create_app(store, secret_key=SECRET), server_side=True)
        async with browser(demo) as client:
            assert text(await client.get("/"), "visits") == "1"
            assert text(await client.get("/"), "visits") == "2"
            page = await post(client, "/login", username="ann")
            assert text(page, "key-before") != text(page, "key-after")
            old = page.history[0].request.headers["cookie"]
            page = await post(client, "/cart/add", name="apple", quantity="2")
            assert 'data-item="apple"' in page.text
            page = await post(client, "/expiry/seconds", seconds="600")
            assert "Max-Age=600;" in (session_cookie(page.history[0]) or "")
            async with browser(demo) as other:
                await post(other, "/login", username="ann")
                assert text(await client.get("/devices"), "devices-count") == "2"
                page = await post(client, "/devices/revoke-others")
                assert text(page, "revoked-count") == "1"
                assert text(await other.get("/"), "nav-user") == "Not signed in"
            page = await post(client, "/logout")
            assert "sessionid" not in client.cookies
        async with browser(demo) as replay:
            stale = await replay.get("/tools", headers={"cookie": old})
            assert text(stale, "check-exists") == "False"
            assert session_cookie(stale) is None
        await store.aclose()  # what the app's lifespan does when a server stops


# -- the real command, served by uvicorn ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served_demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``sessionware demo`` on a free port, with its defaults (SQLite in the user's cache
    directory, here ``tmp_path/cache``), run from the empty directory ``tmp_path/work``."""
    port = _free_port()
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # This checkout's sessionware, whatever an installed copy elsewhere may be.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sessionware", "demo", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
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
                pytest.fail("demo did not start:\n" + (tmp_path / "demo.log").read_text())
            time.sleep(0.1)
        yield url, tmp_path
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def test_the_demo_command_serves_the_site(served_demo: tuple[str, Path]) -> None:
    url, directory = served_demo
    with httpx.Client(base_url=url) as client:
        first = client.get("/")
        assert first.status_code == 200
        assert text(first, "visits") == "1"
        assert session_cookie(first) is not None
        second = client.get("/")
        assert text(second, "visits") == "2"
        assert text(second, "store") == "Store: SQLStore"
        assert client.get("/favicon.ico").status_code == 200
    # The sessions live in the user's cache directory, not where the command was run (a
    # clone of the project stays clean).
    assert (directory / "cache" / "sessionware" / "demo.db").is_file()
    assert list((directory / "work").iterdir()) == []
    log = (directory / "demo.log").read_text()
    assert "sessionware demo: open " + url + "/" in log
    assert str(directory / "cache" / "sessionware" / "demo.db") in log
