"""Logins that survive parallel requests (API.md §4.2-4.3, §5, §10), over HTTP, on every
server-side store, under ASGI and WSGI.

A browser replaces cookies by name, so a response that sets or deletes the session cookie
can undo what a parallel response just set. These tests put the store in the state a
parallel request leaves it in (a logout, a login rotation, a renewal) between another
request's load and its save, and check what that request's response says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionware._keys import new_key
from sessionware._options import Options
from sessionware.stores.base import Loaded, Record, SessionStore
from tests.apps import build_app
from tests.clients import Client
from tests.counting import CountingStore
from tests.stores.factories import make_store

SERVER_KINDS = ["memory", "file", "sqlite", "postgres", "mysql", "redis", "cached", "memcached"]
APP_KINDS = ["starlette", "plain-wsgi"]
SECRET = "stale-keys-secret-0123456789abcdef0123"


class RacingStore(CountingStore):
    """Runs ``race`` once, right after the next load: what a parallel request did."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(inner)
        self.race: Callable[[str], object] | None = None

    def _after_load(self, key: str) -> None:
        race, self.race = self.race, None
        if race is not None:
            race(key)

    def load(self, key: str, now: float) -> Loaded:
        loaded = super().load(key, now)
        self._after_load(key)
        return loaded

    async def aload(self, key: str, now: float) -> Loaded:
        loaded = await super().aload(key, now)
        self._after_load(key)
        return loaded


Make = Callable[..., Client]


@pytest.fixture(params=SERVER_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RacingStore]:
    with make_store(request.param, tmp_path) as inner:
        yield RacingStore(inner)


@pytest.fixture(params=APP_KINDS)
def make(request: pytest.FixtureRequest, store: RacingStore) -> Iterator[Make]:
    kind: str = request.param
    with ExitStack() as stack:

        def client(**options: Any) -> Client:
            options.setdefault("store", store)
            app = build_app(kind, Options(**options))  # type: ignore[typeddict-item]
            return Client(app, kind != "plain-wsgi", stack)

        yield client


def session_cookie(response: httpx.Response) -> str | None:
    found = [c for c in response.headers.get_list("set-cookie") if c.startswith("sessionid=")]
    assert len(found) <= 1
    return found[0] if found else None


def vary_cookie(response: httpx.Response) -> bool:
    return "cookie" in response.headers.get("vary", "").lower()


def carrying(make: Make, cookie: str, **options: Any) -> Client:
    """Another tab or request: a client that sends ``cookie`` as its session cookie."""
    client = make(**options)
    # Where the jar keeps cookies from this test host, so a response replaces it.
    client.cookies.set("sessionid", cookie, domain="testserver.local", path="/")
    return client


def now() -> float:
    return time.time()


# -- dropped saves never touch the cookie -------------------------------------------------


def test_a_write_dropped_by_a_parallel_logout_sends_no_cookie(
    make: Make, store: RacingStore
) -> None:
    client = make()
    client.get("/set?k=user&v=ada")
    store.race = lambda key: store.inner.delete(key, now(), now() + 60)  # logout elsewhere
    response = client.get("/set?k=cart&v=pear")
    assert response.status_code == 200
    assert session_cookie(response) is None
    assert vary_cookie(response)
    assert client.get("/read").json() == {"key": None, "data": {}}  # stays logged out


def test_a_write_dropped_by_a_parallel_login_keeps_the_new_cookie(
    make: Make, store: RacingStore
) -> None:
    client = make()
    client.get("/set?k=cart&v=apple")
    logged_in = new_key()

    def login(key: str) -> None:
        record = store.inner.load(key, now())
        assert isinstance(record, Record)
        store.inner.rotate(key, logged_in, record, now(), now() + 60)

    store.race = login
    response = client.get("/set?k=csrf&v=token")
    assert session_cookie(response) is None  # the browser keeps the login's cookie
    after = carrying(make, logged_in).get("/read").json()
    assert after == {"key": logged_in, "data": {"cart": "apple"}}


def test_a_rotation_of_a_key_a_parallel_logout_ended_is_dropped(
    make: Make, store: RacingStore
) -> None:
    client = make()
    client.get("/set?k=user&v=ada")
    store.race = lambda key: store.inner.delete(key, now(), now() + 60)
    response = client.get("/cycle")
    assert session_cookie(response) is None
    assert client.get("/read").json()["data"] == {}


# -- stale keys ---------------------------------------------------------------------------


def test_a_stale_key_gets_an_empty_session_and_never_a_cookie(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    tab = make()
    tab.get("/set?k=user&v=ada")
    old = tab.session_cookie
    assert old is not None
    tab.get("/cycle")  # login in this tab: the old key is rotated away
    parallel = carrying(make, old)  # a request the browser sent before it saw the new key
    read = parallel.get("/read")
    assert read.json() == {"key": None, "data": {}}
    assert session_cookie(read) is None
    write = parallel.get("/set?k=csrf&v=token")
    assert write.status_code == 200
    assert session_cookie(write) is None
    assert "not saved" in caplog.text
    assert old not in caplog.text
    assert tab.get("/read").json()["data"] == {"user": "ada"}  # the login survived


def test_after_the_window_a_stale_key_is_unknown_and_its_cookie_deleted(make: Make) -> None:
    tab = make(stale_key_window=0)
    tab.get("/set?k=user&v=ada")
    old = tab.session_cookie
    assert old is not None
    tab.get("/flush")
    response = carrying(make, old, stale_key_window=0).get("/read")
    assert response.json() == {"key": None, "data": {}}
    cookie = session_cookie(response)
    assert cookie is not None
    assert "Max-Age=0" in cookie
    assert vary_cookie(response)


# -- renewal (§10) ------------------------------------------------------------------------


def aged_session(store: RacingStore, age: float = 7200.0) -> str:
    """A stored session whose key was issued ``age`` seconds ago."""
    key, then = new_key(), now()
    record = Record(
        {"user": b'{"user":"ada"}'}, then - age, then + 3600, key_at=then - age, updated_at=then
    )
    assert store.inner.insert(key, record)
    return key


def test_an_old_key_is_renewed_and_the_old_one_follows_for_the_grace_period(
    make: Make, store: RacingStore
) -> None:
    old = aged_session(store)
    first = carrying(make, old, renew_after=3600)
    response = first.get("/read")
    assert response.json()["data"] == {"user": "ada"}
    cookie = session_cookie(response)
    assert cookie is not None
    assert vary_cookie(response)
    renewed = cookie.split(";")[0].split("=", 1)[1]
    assert renewed != old
    late = carrying(make, old, renew_after=3600).get("/set?k=late&v=1")  # still the old key
    assert late.json()["key"] == renewed
    late_cookie = session_cookie(late)
    assert late_cookie is not None
    assert late_cookie.startswith(f"sessionid={renewed};")
    assert first.get("/read").json()["data"] == {"user": "ada", "late": "1"}


def test_flush_ends_the_renewal_pointer(make: Make, store: RacingStore) -> None:
    old = aged_session(store)
    first = carrying(make, old, renew_after=3600)
    first.get("/read")
    first.get("/flush")
    response = carrying(make, old, renew_after=3600).get("/read")
    assert response.json() == {"key": None, "data": {}}
    assert session_cookie(response) is None  # stale: the logout's deletion stands


def test_parallel_requests_that_find_the_key_due_make_one_renewal(
    make: Make, store: RacingStore
) -> None:
    old = aged_session(store)
    clients = [carrying(make, old, renew_after=3600) for _ in range(6)]
    cookies: list[str | None] = [None] * len(clients)
    barrier = threading.Barrier(len(clients))

    def request(index: int) -> None:
        barrier.wait()
        cookies[index] = session_cookie(clients[index].get("/read"))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = {c.split(";")[0] if c else None for c in cookies}
    assert len(values) == 1
    assert None not in values
    assert store.calls["renew"] >= 1


def test_login_rotation_leaves_no_pointer(make: Make) -> None:
    tab = make(renew_after=3600)
    tab.get("/set?k=user&v=ada")
    old = tab.session_cookie
    assert old is not None
    tab.get("/cycle")
    response = carrying(make, old, renew_after=3600).get("/read")
    assert response.json() == {"key": None, "data": {}}  # stale, not followed: no fixation


# -- Vary: Cookie on every response that sets or deletes the cookie -------------------------


def test_every_session_set_cookie_comes_with_vary_cookie(make: Make, store: RacingStore) -> None:
    """A refresh (save_every_request), a re-signed cookie (secret rotation) and a deleted
    stranger's cookie, on a route that never reads the session."""
    responses = []
    rolling = make(save_every_request=True)
    rolling.get("/set?k=a&v=1")
    responses.append(rolling.get("/noop"))
    old = make(secret_key="old-" + SECRET)
    old.get("/set?k=a&v=1")
    signed_old = old.session_cookie
    assert signed_old is not None
    responses.append(carrying(make, signed_old, secret_key=[SECRET, "old-" + SECRET]).get("/noop"))
    responses.append(carrying(make, new_key()).get("/noop"))
    setting = [r for r in responses if session_cookie(r) is not None]
    assert setting  # at least the rolling refresh sets it, under ASGI and WSGI alike
    for response in setting:
        assert vary_cookie(response)
    refreshed = session_cookie(responses[0])
    assert refreshed is not None
    assert "Max-Age=" in refreshed


def test_a_login_from_a_stale_cookie_works(make: Make) -> None:
    """A browser whose login or logout got a 503 after the store applied it still holds
    the ended key; logging in again must not be dropped as a stale request."""
    tab = make()
    tab.get("/set?k=cart&v=apple")
    old = tab.session_cookie
    assert old is not None
    tab.get("/flush")  # applied; suppose its response never reached the browser
    browser = carrying(make, old)
    assert session_cookie(browser.get("/set?k=csrf&v=1")) is None  # still stale: dropped
    login = browser.get("/cycle")
    assert session_cookie(login) is not None
    browser.get("/set?k=user&v=ada")
    assert browser.get("/read").json()["data"] == {"user": "ada"}
