"""API.md §3 and §4 through real HTTP requests, on all five app kinds (both middlewares)."""

from __future__ import annotations

import logging
import re

import pytest

from sessionware._keys import is_valid_key
from sessionware.stores import MemoryStore
from tests.apps import WSGI_KINDS
from tests.conftest import MakeClient
from tests.counting import CountingStore


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore())


def set_cookies(response: object) -> list[str]:
    return response.headers.get_list("set-cookie")  # type: ignore[attr-defined, no-any-return]


def session_cookie_headers(response: object) -> list[str]:
    return [c for c in set_cookies(response) if c.startswith("sessionid=")]


# -- §4.4 / §4.6 and the zero-store-call rule ---------------------------------------------------


def test_request_without_cookie_that_writes_nothing_makes_no_store_call(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    for path in ("/noop", "/read", "/expiry-info"):
        response = client.get(path)
        assert response.status_code == 200
        assert session_cookie_headers(response) == []
    assert store.total == 0


def test_first_write_creates_a_record_and_sets_the_cookie(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    response = client.get("/set?k=user&v=ada")
    assert response.status_code == 200
    (cookie,) = session_cookie_headers(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie
    assert "Max-Age=1209600" in cookie
    assert store.calls == {"insert": 1}
    assert response.json()["key"] is None  # like Django: no key until the record is saved
    key = client.get("/read").json()["key"]
    assert is_valid_key(key)
    assert client.get("/read").json() == {"key": key, "data": {"user": "ada"}}


def test_unchanged_session_writes_nothing_and_sends_no_cookie(
    make_client: MakeClient, store: CountingStore, app_kind: str
) -> None:
    client = make_client(store=store)
    client.get("/set?k=a&v=1")
    store.reset()
    for path in ("/read", "/noop", "/pop?k=absent", "/del?k=absent"):
        response = client.get(path)
        assert session_cookie_headers(response) == []
    assert store.writes == 0
    # WSGI loads lazily: /noop never touches the session, so it never loads it.
    assert store.calls["load"] == (3 if app_kind in WSGI_KINDS else 4)


def test_accessed_session_adds_vary_cookie_and_untouched_does_not(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    assert "vary" not in client.get("/noop").headers
    assert client.get("/read").headers["vary"] == "Cookie"
    merged = client.get("/headers-read").headers.get_list("vary")
    assert ", ".join(merged).replace(" ", "").split(",") == ["Accept-Encoding", "Cookie"]


def test_app_headers_are_kept_and_only_the_session_cookie_is_added(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    response = client.get("/own-headers?v=2")
    assert response.headers["x-app"] == "kept"
    assert "other=1; Path=/" in set_cookies(response)
    assert len(session_cookie_headers(response)) == 1


def test_app_that_sets_our_cookie_itself_is_left_alone_when_session_unchanged(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    response = client.get("/own-session-cookie")
    assert session_cookie_headers(response) == ["sessionid=from-app; Path=/"]


# -- §4.1: failures save nothing ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/error?k=x", "/raise?k=x"])
def test_error_response_or_exception_saves_nothing(
    make_client: MakeClient, store: CountingStore, path: str
) -> None:
    client = make_client(store=store)
    client.get("/set?k=kept&v=1")
    store.reset()
    response = client.get(path)
    assert response.status_code == 500
    assert session_cookie_headers(response) == []
    assert store.writes == 0
    assert client.get("/read").json()["data"] == {"kept": "1"}


def test_error_on_a_new_session_sets_no_cookie(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    response = client.get("/error?k=x")
    assert session_cookie_headers(response) == []
    assert store.total == 0


# -- §3: the mapping ---------------------------------------------------------------------------


def test_set_modify_delete_and_pop_persist(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store)
    client.get("/set?k=theme&v=dark")
    client.get("/set?k=lang&v=en")
    client.get("/set?k=theme&v=light")
    assert client.get("/read").json()["data"] == {"theme": "light", "lang": "en"}
    assert client.get("/del?k=theme").status_code == 200
    assert client.get("/del?k=theme").status_code == 404  # KeyError for an absent key
    popped = client.get("/pop?k=lang").json()
    assert popped["popped"] == "en"
    assert client.get("/pop?k=lang").json()["popped"] is None
    state = client.get("/read").json()
    assert state["data"] == {}
    assert state["key"] is not None  # emptied by del/pop, still the same session


def test_nested_values_round_trip(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store)
    cart = '{"apple": 2, "pear": [1, 2], "note": "zażółć"}'
    client.get("/set-json", params={"k": "cart", "v": cart})
    assert client.get("/read").json()["data"] == {
        "cart": {"apple": 2, "pear": [1, 2], "note": "zażółć"}
    }


def test_clear_keeps_the_key_and_saves_empty_data(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    client.get("/set?k=a&v=1")
    key = client.get("/read").json()["key"]
    response = client.get("/clear")
    assert response.json() == {"key": key, "data": {}}
    assert session_cookie_headers(response)  # saved, cookie re-sent
    assert client.get("/read").json() == {"key": key, "data": {}}


def test_flush_deletes_record_and_cookie_and_old_key_never_works(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    client.get("/set?k=user&v=ada")
    old_cookie = client.session_cookie
    assert old_cookie is not None
    store.reset()
    response = client.get("/flush")
    assert response.json() == {"key": None, "data": {}}
    (deletion,) = session_cookie_headers(response)
    assert "Max-Age=0" in deletion
    assert "Path=/" in deletion
    assert store.calls == {"load": 1, "delete": 1}
    assert client.session_cookie is None
    replay = client.get("/read", headers={"Cookie": f"sessionid={old_cookie}"})
    assert replay.json() == {"key": None, "data": {}}


def test_flush_then_write_gives_a_new_key(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store)
    client.get("/set?k=user&v=ada")
    old = client.get("/read").json()["key"]
    response = client.get("/flush-then-set?k=flash&v=bye")
    (cookie,) = session_cookie_headers(response)
    assert "Max-Age=0" not in cookie
    state = client.get("/read").json()
    assert state["data"] == {"flash": "bye"}
    assert state["key"] not in (None, old)


@pytest.mark.parametrize("path", ["/cycle", "/create"])
def test_cycle_key_and_create_keep_data_under_a_new_key(
    make_client: MakeClient, store: CountingStore, path: str
) -> None:
    client = make_client(store=store)
    client.get("/set?k=user&v=ada")
    old = client.get("/read").json()["key"]
    old_cookie = client.session_cookie
    response = client.get(path).json()
    assert response["before"] == old
    assert response["key"] not in (None, old)  # generated at once, visible in the handler
    assert response["data"] == {"user": "ada"}
    assert client.get("/read").json() == {"key": response["key"], "data": {"user": "ada"}}
    replay = client.get("/read", headers={"Cookie": f"sessionid={old_cookie}"})
    assert replay.json() == {"key": None, "data": {}}


def test_create_on_a_new_session_saves_an_empty_record(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    key = client.get("/create").json()["key"]
    assert key is not None
    assert store.calls == {"insert": 1}
    assert client.get("/read").json() == {"key": key, "data": {}}


def test_test_cookie_trio(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store)
    assert client.get("/test-cookie/check").json() == {"worked": False}
    client.get("/test-cookie/set")
    assert client.get("/test-cookie/check").json() == {"worked": True}
    assert client.get("/test-cookie/check").json() == {"worked": False}  # deleted after check


# -- §3: expiry ---------------------------------------------------------------------------------


def max_age_of(cookie: str) -> int | None:
    found = re.search(r"Max-Age=(\d+)", cookie)
    return None if found is None else int(found.group(1))


def test_set_expiry_seconds_sets_cookie_max_age_and_persists(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    client.get("/set?k=a&v=1")
    response = client.get("/expiry?v=300")
    assert response.json()["age"] == 300
    (cookie,) = session_cookie_headers(response)
    assert max_age_of(cookie) in (299, 300)
    assert client.get("/expiry-info").json() == {"age": 300, "browser_close": False}


def test_set_expiry_zero_makes_a_browser_session_cookie(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    response = client.get("/expiry?v=0")
    assert response.json()["browser_close"] is True
    (cookie,) = session_cookie_headers(response)
    assert "Max-Age" not in cookie
    assert "Expires" not in cookie
    assert client.get("/expiry-info").json()["browser_close"] is True


@pytest.mark.parametrize("value", ["td:600", "at:+600"])
def test_set_expiry_timedelta_and_datetime(
    make_client: MakeClient, store: CountingStore, value: str
) -> None:
    import time

    if value.startswith("at:"):
        value = f"at:{time.time() + 600}"
    client = make_client(store=store)
    response = client.get(f"/expiry?v={value}")
    assert 598 <= response.json()["age"] <= 600
    (cookie,) = session_cookie_headers(response)
    assert 598 <= (max_age_of(cookie) or 0) <= 600


def test_set_expiry_none_returns_to_the_default(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store, max_age=1000)
    client.get("/expiry?v=300")
    response = client.get("/expiry?v=none")
    assert response.json()["age"] == 1000
    (cookie,) = session_cookie_headers(response)
    assert max_age_of(cookie) == 1000


def test_max_age_none_gives_browser_session_cookies(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store, max_age=None)
    (cookie,) = session_cookie_headers(client.get("/set?k=a&v=1"))
    assert "Max-Age" not in cookie


def test_expire_at_browser_close_option(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store, expire_at_browser_close=True)
    (cookie,) = session_cookie_headers(client.get("/set?k=a&v=1"))
    assert "Max-Age" not in cookie
    (cookie,) = session_cookie_headers(client.get("/expiry?v=60"))
    assert max_age_of(cookie) in (59, 60)


def test_save_every_request_resends_the_cookie(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store, save_every_request=True)
    client.get("/set?k=a&v=1")
    store.reset()
    response = client.get("/read")
    assert len(session_cookie_headers(response)) == 1
    assert store.calls == {"load": 1, "update": 1}
    assert (
        session_cookie_headers(make_client(store=store, save_every_request=True).get("/noop")) == []
    )


# -- cookie attributes --------------------------------------------------------------------------


def test_cookie_attributes_follow_the_options(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(
        store=store, cookie_name="__Host-sid", secure=True, samesite="strict", partitioned=True
    )
    (cookie,) = [c for c in set_cookies(client.get("/set?k=a&v=1")) if c.startswith("__Host-sid=")]
    for part in ("Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Partitioned"):
        assert part in cookie.split("; ")
    client = make_client(
        store=store, domain="example.test", path="/app", httponly=False, samesite=None
    )
    response = client.get("/set?k=a&v=1")
    (cookie,) = session_cookie_headers(response)
    assert "Domain=example.test" in cookie
    assert "Path=/app" in cookie
    assert "HttpOnly" not in cookie
    assert "SameSite" not in cookie


# -- bad cookies: never a 500, never adopted ----------------------------------------------------

BAD_COOKIES = [
    "garbage",
    "A" * 43,  # well-formed, unknown to the store
    "A" * 42,
    "../../etc/passwd",
    "x" * 10_000,
    "%00%ff",
    "ключ",
    "",
]


@pytest.mark.parametrize("value", BAD_COOKIES, ids=range(len(BAD_COOKIES)))
def test_bad_cookie_gives_an_empty_session_and_is_dropped(
    make_client: MakeClient, store: CountingStore, value: str
) -> None:
    client = make_client(store=store)
    cookie = f"sessionid={value}".encode()  # raw bytes: non-ASCII too
    response = client.get("/read", headers={"Cookie": cookie})
    assert response.status_code == 200
    assert response.json() == {"key": None, "data": {}}
    (deletion,) = session_cookie_headers(response)
    assert "Max-Age=0" in deletion
    assert store.writes == 0


def test_unknown_well_formed_key_is_never_adopted(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    planted = "P" * 43
    response = client.get("/set?k=a&v=1", headers={"Cookie": f"sessionid={planted}"})
    key = response.json()["key"]
    assert key is None or key != planted
    (cookie,) = session_cookie_headers(response)
    assert planted not in cookie
    assert store.calls["insert"] == 1


def test_duplicated_session_cookie_gives_an_empty_session(
    make_client: MakeClient, store: CountingStore
) -> None:
    client = make_client(store=store)
    client.get("/set?k=a&v=1")
    real = client.session_cookie
    response = client.get("/read", headers={"Cookie": f"sessionid={real}; sessionid={real}"})
    assert response.status_code == 200
    assert response.json()["data"] == {}


def test_other_cookies_do_not_hide_ours(make_client: MakeClient, store: CountingStore) -> None:
    client = make_client(store=store)
    client.get("/set?k=a&v=1")
    real = client.session_cookie
    header = f'junk; other="x=y"; =; sessionid={real}; tracking=%%%'
    assert client.get("/read", headers={"Cookie": header}).json()["data"] == {"a": "1"}


def test_no_exception_is_logged_for_bad_cookies(
    make_client: MakeClient, store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(store=store)
    with caplog.at_level(logging.WARNING):
        for value in BAD_COOKIES:
            client.get("/read", headers={"Cookie": f"sessionid={value}".encode()})
    assert not [r for r in caplog.records if r.exc_info]
