"""The demo's "Your devices" page over HTTP: listing a user's sessions, marking this one,
and signing one or all others out (API.md §9). Every server-side store runs it in
``test_demo.py``'s walkthrough and in the browser tests; here it runs on memory."""

from __future__ import annotations

import re

import httpx
import pytest

from sessionware.demo import create_app
from sessionware.stores import CookieStore, MemoryStore
from tests.demo_client import NO_SESSION, SECRET, Demo, browser, has, post, session_cookie, text

pytestmark = pytest.mark.anyio


@pytest.fixture
def demo() -> Demo:
    return Demo(create_app(MemoryStore()), server_side=True)


def device_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-device="([^"]+)"', page.text)


def this_device(page: httpx.Response) -> str:
    found = re.findall(r'<tr data-device="([^"]+)" class="current">', page.text)
    assert len(found) == 1, found
    assert page.text.count('id="this-device"') == 1
    return str(found[0])


async def test_the_cookie_store_explains_why_there_is_no_list() -> None:
    demo = Demo(create_app(CookieStore(), secret_key=SECRET), server_side=False)
    async with browser(demo) as client:
        await post(client, "/login", username="ann")
        page = await client.get("/devices")
        assert page.status_code == 200
        assert "refuses <code>user_key</code>" in page.text
        assert "sessionware demo --store sqlite:///" in page.text
        assert not has(page, "devices")
        page = await post(client, "/devices/revoke-others")
        assert text(page, "flash-message").startswith("This store cannot list or end sessions")
        assert session_cookie(page.history[0]) is None
        assert text(page, "nav-user") == "Signed in as ann"


async def test_signed_out_visitors_are_asked_to_log_in(demo: Demo) -> None:
    async with browser(demo) as client:
        page = await client.get("/devices")
        assert has(page, "devices-signed-out")
        assert session_cookie(page) is None  # reading the page stores nothing
        page = await post(client, "/devices/revoke-others")
        assert text(page, "flash-message").startswith("Log in first")
        page = await post(client, "/devices/revoke", id="anything")
        assert text(page, "flash-message").startswith("Log in first")
        assert text(page, "session-key") == NO_SESSION


async def test_every_session_of_the_user_is_listed_and_this_one_marked(demo: Demo) -> None:
    async with (
        browser(demo) as laptop,
        browser(demo) as phone,
        browser(demo) as tablet,
        browser(demo) as stranger,
    ):
        for client in (laptop, phone, tablet):
            await post(client, "/login", username="ann")
        await post(stranger, "/login", username="bob")
        pages = [await client.get("/devices") for client in (laptop, phone, tablet)]
        listed = device_ids(pages[0])
        assert len(listed) == len(set(listed)) == 3
        assert text(pages[0], "devices-count") == "3"
        assert {this_device(page) for page in pages} == set(listed)
        assert all(device_ids(page) == listed for page in pages)
        assert device_ids(pages[2])[0] == this_device(pages[2])  # newest first
        for client in (laptop, phone, tablet):  # a handle, never the key
            assert client.cookies["sessionid"] not in pages[0].text.split('id="session-panel"')[0]
        assert len(device_ids(await stranger.get("/devices"))) == 1
        assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</td>", pages[0].text)


async def test_sign_out_everywhere_else(demo: Demo) -> None:
    async with browser(demo) as laptop, browser(demo) as phone, browser(demo) as tablet:
        for client in (laptop, phone, tablet):
            await post(client, "/login", username="ann")
        key = laptop.cookies["sessionid"]
        page = await post(laptop, "/devices/revoke-others")
        assert text(page, "flash-message").startswith("Signed out 2 other devices")
        assert "stale for 60 s" in text(page, "flash-message")
        assert text(page, "revoked-count") == "2"
        assert device_ids(page) == [this_device(page)]
        assert text(page, "session-key") == key  # this device stays in, same key
        for client in (phone, tablet):
            other = await client.get("/devices")
            assert has(other, "devices-signed-out")
            assert text(other, "nav-user") == "Not signed in"
            assert has(other, "session-ended")
        page = await post(laptop, "/devices/revoke-others")
        assert text(page, "flash-message").startswith("No other device")


async def test_sign_out_one_device_by_its_id(demo: Demo) -> None:
    async with browser(demo) as laptop, browser(demo) as phone:
        await post(laptop, "/login", username="ann")
        await post(phone, "/login", username="ann")
        phone_id = this_device(await phone.get("/devices"))
        page = await post(laptop, "/devices/revoke", id=phone_id)
        assert text(page, "flash-message").startswith("Signed out that device")
        assert phone_id not in device_ids(page)
        assert text(await phone.get("/"), "nav-user") == "Not signed in"
        page = await post(laptop, "/devices/revoke", id=phone_id)  # already gone
        assert "No live session of yours" in text(page, "flash-message")
        page = await post(laptop, "/devices/revoke", id="not-an-id")
        assert "No live session of yours" in text(page, "flash-message")
        assert text(page, "nav-user") == "Signed in as ann"


async def test_another_users_device_cannot_be_signed_out(demo: Demo) -> None:
    async with browser(demo) as ann, browser(demo) as bob:
        await post(ann, "/login", username="ann")
        await post(bob, "/login", username="bob")
        bob_id = this_device(await bob.get("/devices"))
        page = await post(ann, "/devices/revoke", id=bob_id)
        assert "No live session of yours" in text(page, "flash-message")
        assert text(await bob.get("/devices"), "nav-user") == "Signed in as bob"


async def test_sign_out_this_device_logs_out_and_drops_the_cookie(demo: Demo) -> None:
    async with browser(demo) as laptop, browser(demo) as phone:
        await post(laptop, "/login", username="ann")
        await post(phone, "/login", username="ann")
        mine = this_device(await laptop.get("/devices"))
        page = await post(laptop, "/devices/revoke", id=mine)
        assert text(page, "flash-message").startswith("Signed out this device")
        assert "Max-Age=0" in (session_cookie(page.history[0]) or "")
        assert "sessionid" not in laptop.cookies
        assert has(page, "devices-signed-out")
        assert len(device_ids(await phone.get("/devices"))) == 1
