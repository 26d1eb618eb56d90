"""Every device a user is signed in on (API.md §9): listed, ended one by one or all at once,
on every server-side store, through both middlewares."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

from sessionware import SessionMiddleware, WSGISessionMiddleware
from sessionware._keys import info_id
from sessionware._options import Options
from sessionware.stores import CookieStore
from sessionware.stores.base import SessionStore
from tests.apps import build_app
from tests.clients import Client
from tests.stores.factories import make_store

SERVER_KINDS = ["memory", "file", "sqlite", "postgres", "mysql", "redis", "cached", "memcached"]
APP_KINDS = ["starlette", "plain-wsgi"]
USER = "user_id"


@pytest.fixture(params=SERVER_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    with make_store(request.param, tmp_path) as built:
        yield built


Make = Callable[[], Client]


@pytest.fixture(params=APP_KINDS)
def device(request: pytest.FixtureRequest, store: SessionStore) -> Iterator[Make]:
    """A new browser (device) on the app, which keeps the user id under ``user_id``."""
    kind: str = request.param
    with ExitStack() as stack:

        def make() -> Client:
            options = Options(store=store, user_key=USER)
            return Client(build_app(kind, options), kind != "plain-wsgi", stack)

        yield make


def login(client: Client, user: str = "42") -> str:
    """Sign in as Django does: a new key, then the user id; the new key."""
    client.get("/set?k=cart&v=1")
    client.get("/cycle")
    key = client.get(f"/set?k={USER}&v={user}").json()["key"]
    assert isinstance(key, str)
    return key


def listed(store: SessionStore, user: str = "42") -> set[str]:
    return {info.id for info in store.user_sessions(user)}


def test_three_devices_are_listed_with_distinct_public_ids(
    device: Make, store: SessionStore
) -> None:
    keys = [login(device()) for _ in range(3)]
    infos = store.user_sessions("42")
    assert {info.id for info in infos} == {info_id(key) for key in keys}
    assert len({info.id for info in infos}) == 3
    for info in infos:
        text = repr(info) + "".join(str(getattr(info, f.name)) for f in fields(info))
        assert not any(key in text for key in keys)
        assert info.expires_at.timestamp() > time.time()
    assert [i.created_at for i in infos] == sorted((i.created_at for i in infos), reverse=True)


def test_sign_out_everywhere_else_keeps_only_this_device(device: Make, store: SessionStore) -> None:
    clients = [device() for _ in range(3)]
    keys = [login(client) for client in clients]
    assert store.revoke_user("42", except_key=keys[0]) == 2
    assert clients[0].get("/read").json()["data"][USER] == "42"
    for other in clients[1:]:
        response = other.get("/read")
        assert response.json() == {"key": None, "data": {}}  # dead at once
        assert response.headers.get("set-cookie") is None  # a stale key: cookie untouched
    assert listed(store) == {info_id(keys[0])}


def test_one_device_is_ended_by_its_id(device: Make, store: SessionStore) -> None:
    mine, lost = device(), device()
    login(mine)
    lost_key = login(lost)
    assert store.revoke_session("42", info_id(lost_key))
    assert lost.get("/read").json()["data"] == {}
    assert mine.get("/read").json()["data"][USER] == "42"
    assert not store.revoke_session("42", info_id(lost_key))


def test_logout_rotation_and_a_changed_user_keep_the_list_right(
    device: Make, store: SessionStore
) -> None:
    first, second = device(), device()
    login(first)
    second_key = login(second)
    first.get("/flush")  # logout
    assert listed(store) == {info_id(second_key)}
    rotated = second.get("/cycle").json()["key"]
    assert listed(store) == {info_id(rotated)}
    second.get(f"/set?k={USER}&v=43")  # now someone else
    assert listed(store) == set()
    assert listed(store, "43") == {info_id(rotated)}
    second.get(f"/del?k={USER}")
    assert listed(store, "43") == set()


def test_an_expired_session_leaves_the_list(device: Make, store: SessionStore) -> None:
    client = device()
    login(client)
    assert len(store.user_sessions("42")) == 1
    later = time.time() + 2 * 1_209_600
    assert store.user_sessions("42", later) == []
    assert not store.revoke_user("42", now=later)


def test_the_async_twins_list_and_revoke(device: Make, store: SessionStore) -> None:
    clients = [device() for _ in range(2)]
    keys = [login(client) for client in clients]

    async def run() -> tuple[set[str], bool, int]:
        infos = await store.auser_sessions(42)
        one = await store.arevoke_session(42, info_id(keys[1]))
        rest = await store.arevoke_user(42)
        return {info.id for info in infos}, one, rest

    ids, one, rest = anyio.run(run)
    assert ids == {info_id(key) for key in keys}
    assert one
    assert rest == 1
    assert listed(store) == set()


# -- races, in parallel -----------------------------------------------------------------------


def together(*actions: Callable[[], Any]) -> None:
    barrier = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(action: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            action()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_devices_signing_in_at_once_are_both_listed(device: Make, store: SessionStore) -> None:
    first, second = device(), device()
    together(lambda: login(first), lambda: login(second))
    assert len(listed(store)) == 2


def test_a_rotation_racing_a_revoke_never_escapes_it(device: Make, store: SessionStore) -> None:
    for _ in range(3):
        client = device()
        login(client)
        together(partial(client.get, "/cycle"), partial(store.revoke_user, "42"))
        assert listed(store) == set()
        assert client.get("/read").json()["data"] == {}


def test_a_logout_racing_a_revoke_leaves_nothing(device: Make, store: SessionStore) -> None:
    client = device()
    login(client)
    together(lambda: client.get("/flush"), lambda: store.revoke_user("42"))
    assert listed(store) == set()
    assert client.get("/read").json()["data"] == {}


# -- the cookie store cannot ---------------------------------------------------------------


@pytest.mark.parametrize("middleware", [SessionMiddleware, WSGISessionMiddleware])
def test_the_cookie_store_refuses_user_key_and_says_why(middleware: Any) -> None:
    with pytest.raises(ValueError, match="keeps sessions in the browser"):
        middleware(
            lambda *a: None,
            store=CookieStore(),
            secret_key="user-sessions-secret-0123456789abcdef",
            user_key=USER,
        )
