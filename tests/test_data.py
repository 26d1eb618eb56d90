"""Honest data on every store (API.md §3, §6): values come back with their type, in-place
changes are kept when flagged, and a value that cannot be saved fails loudly before any
store call, leaving the stored session as it was."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sessionware import (
    SessionMiddleware,
    SessionSerializationError,
    WSGISessionMiddleware,
    get_session,
)
from sessionware.stores import CookieStore
from tests.clients import Client
from tests.stores.factories import make_store

KINDS = ["memory", "file", "sqlite", "postgres", "mysql", "redis", "cached", "memcached", "cookie"]
SECRET = "data-tests-secret-0123456789abcdef01234"

VALUES: dict[str, Any] = {
    "datetime": dt.datetime(2026, 11, 29, 12, 30, 15, 250, tzinfo=dt.UTC),
    "date": dt.date(2026, 2, 28),
    "time": dt.time(8, 15, 30),
    "timedelta": dt.timedelta(days=2, seconds=7),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "decimal": decimal.Decimal("19.99"),
    "bytes": b"\x00\xff raw",
    "tuple": (1, "two", (3.0,)),
    "set": {1, 2, 3},
    "int_keys": {1: "one", "1": "string one"},
}


def handle(path: str, query: str, session: dict[str, Any]) -> tuple[int, bytes]:
    """The test app, written once for both middlewares."""
    params = dict(parse_qsl(query))
    if path == "/put":
        session[params["name"]] = VALUES[params["name"]]
    elif path == "/put-object":
        session["broken"] = object()
    elif path == "/put-int-key":
        session[42] = "a value under a key no store keeps"  # type: ignore[index]
    elif path == "/put-enum-key":
        session[Key.CART] = ["apple"]
    elif path == "/key-types":
        return 200, json.dumps({name: type(name).__name__ for name in session}).encode()
    elif path == "/cycle-and-put-object":
        session.cycle_key()  # type: ignore[attr-defined]
        session["broken"] = {"deep": [object()]}
    elif path == "/append":
        session["cart"].append(params["item"])
        if params.get("flag"):
            session.modified = True  # type: ignore[attr-defined]
    elif path == "/start-cart":
        session["cart"] = ["apple"]
    elif path == "/expiry":
        try:
            session.set_expiry(int(params["seconds"]))  # type: ignore[attr-defined]
        except ValueError as exc:
            return 400, str(exc).encode()
        session["touched"] = True
    report = {name: [type(value).__name__, repr(value)] for name, value in session.items()}
    return 200, json.dumps(report).encode()


def asgi_app(options: dict[str, Any]) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        status, body = handle(scope["path"], scope["query_string"].decode(), get_session(scope))
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return SessionMiddleware(app, **options)


def wsgi_app(options: dict[str, Any]) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status, body = handle(environ["PATH_INFO"], environ["QUERY_STRING"], get_session(environ))
        start_response(f"{status} X", [("Content-Type", "application/json")])
        return [body]

    return WSGISessionMiddleware(app, **options)


Make = Callable[..., Client]


class Key(enum.StrEnum):
    CART = "cart"


@pytest.fixture(params=KINDS)
def store_options(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "cookie":
        yield {"store": CookieStore(), "secret_key": SECRET}
        return
    with make_store(request.param, tmp_path) as store:
        yield {"store": store}


@pytest.fixture(params=["asgi", "wsgi"])
def make(request: pytest.FixtureRequest, store_options: dict[str, Any]) -> Iterator[Make]:
    with ExitStack() as stack:

        def client(**options: Any) -> Client:
            merged = {**store_options, **options}
            if request.param == "asgi":
                return Client(asgi_app(merged), True, stack)
            return Client(wsgi_app(merged), False, stack)

        yield client


@pytest.mark.parametrize("name", list(VALUES))
def test_each_tagged_type_comes_back_as_itself(make: Make, name: str) -> None:
    client = make()
    client.get(f"/put?name={name}")
    stored = client.get("/").json()[name]
    value = VALUES[name]
    assert stored == [type(value).__name__, repr(value)]


@pytest.mark.parametrize(
    "path", ["/put-object", "/put-int-key"], ids=["unserializable-value", "non-str-key"]
)
def test_a_save_that_cannot_be_encoded_is_a_500_and_the_old_session_survives(
    make: Make, path: str
) -> None:
    client = make()
    client.get("/put?name=date")
    before = client.session_cookie
    response = client.get(path)
    assert response.status_code == 500
    assert response.headers.get("set-cookie") is None
    assert client.session_cookie == before
    assert list(client.get("/").json()) == ["date"]


@pytest.mark.parametrize("first", ["/put?name=date", "/put-enum-key"])
def test_a_str_subclass_key_comes_back_as_a_plain_str(make: Make, first: str) -> None:
    client = make()
    client.get(first)  # a new session (insert), then a change to it (update)
    client.get("/put-enum-key" if first != "/put-enum-key" else "/put?name=date")
    assert client.get("/key-types").json() == {"date": "str", "cart": "str"}


def test_a_non_str_key_error_names_the_key_and_says_why() -> None:
    error = SessionSerializationError.for_key(42)
    assert isinstance(error, TypeError)
    assert "session key 42 is an int" in str(error)
    assert "must be str" in str(error)


def test_cycle_key_with_an_unserializable_value_leaves_the_old_session_intact(
    make: Make,
) -> None:
    client = make()
    client.get("/put?name=uuid")
    response = client.get("/cycle-and-put-object")
    assert response.status_code == 500
    assert list(client.get("/").json()) == ["uuid"]  # the old key still works


def test_a_serialization_error_names_the_key_and_the_type(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with make_store("memory", tmp_path) as store:
        app = SessionMiddleware(_raising_app, store=store)
        with ExitStack() as stack:
            client = Client(app, True, stack)
            response = client.get("/")
    assert response.status_code == 500
    assert isinstance(RAISED[0], TypeError)
    assert "'basket'" in str(RAISED[0])
    assert "object" in str(RAISED[0])


RAISED: list[BaseException] = []


async def _raising_app(scope: Any, receive: Any, send: Any) -> None:
    get_session(scope)["basket"] = object()
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
    except Exception as exc:
        RAISED[:] = [exc]
        raise


@pytest.mark.parametrize("flag", [True, False], ids=["modified", "save_every_request"])
def test_in_place_changes_are_saved_when_flagged(make: Make, flag: bool) -> None:
    client = make() if flag else make(save_every_request=True)
    client.get("/start-cart")
    client.get("/append?item=pear" + ("&flag=1" if flag else ""))
    assert client.get("/").json()["cart"] == ["list", "['apple', 'pear']"]


def test_in_place_changes_without_a_flag_are_not_saved_anywhere(
    make: Make, store_options: dict[str, Any]
) -> None:
    client = make()
    client.get("/start-cart")
    client.get("/append?item=pear")
    assert client.get("/").json()["cart"] == ["list", "['apple']"]  # the same on every store


@pytest.mark.parametrize("seconds", [10**12, -(10**12), 400_000_000])
def test_a_huge_expiry_is_refused_and_nothing_is_written(make: Make, seconds: int) -> None:
    client = make()
    client.get("/put?name=date")
    response = client.get(f"/expiry?seconds={seconds}")
    assert response.status_code == 400
    assert b"ten years" in response.content
    assert "touched" not in client.get("/").json()


def test_memory_and_sqlite_give_back_the_same_types(tmp_path: Path) -> None:
    """Development (memory) and production (SQL) store the same bytes."""
    seen = []
    for kind in ("memory", "sqlite"):
        with make_store(kind, tmp_path) as store, ExitStack() as stack:
            client = Client(asgi_app({"store": store}), True, stack)
            for name in VALUES:
                client.get(f"/put?name={name}")
            seen.append(client.get("/").json())
    assert seen[0] == seen[1]
    assert seen[0]["tuple"][0] == "tuple"
