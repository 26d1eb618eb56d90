"""``sessionware.testing``: editing and reading a client's session from a test, for every
client kind and every way of installing sessionware, under the middleware's own rules."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import flask
import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from werkzeug.test import Client as WerkzeugClient
from werkzeug.wrappers import Request as WerkzeugRequest
from werkzeug.wrappers import Response as WerkzeugResponse

from sessionware import (
    Session,
    SessionMiddleware,
    SessionSerializationError,
    WSGISessionMiddleware,
    get_session,
)
from sessionware.flask import FlaskSession, init_app
from sessionware.stores import MemoryStore
from sessionware.stores.base import SessionStore
from sessionware.testing import aedit_session, aread_session, edit_session, read_session

SECRET = "testing-helpers-secret-" + "s" * 24
BASE = "http://testserver"

# The SQL and Redis stores are being moved to the new store contract; these rows run
# once they are (remove the marks).
STORE_KINDS = ["memory", "cookie", "sqlite", "redis"]


def make_store(kind: str, tmp_path: Any) -> SessionStore | None:
    """The store of ``kind``; ``None`` for the signed-cookie store (``secret_key`` only)."""
    if kind == "memory":
        return MemoryStore()
    if kind == "cookie":
        return None
    from tests.stores import factories

    return factories.make_store(kind, tmp_path).__enter__()


# -- one tiny app per way of installing sessionware: /read, /set, /rotate ------------------


def _handle(path: str, session: Session) -> Any:
    parts = path.strip("/").split("/")
    if parts[0] == "set":
        session[parts[1]] = parts[2]
    elif parts[0] == "rotate":
        session.cycle_key()
    return dict(session.items())


def starlette_app(store: SessionStore | None) -> Starlette:
    async def endpoint(request: Any) -> Response:
        return JSONResponse(_handle(request.url.path, request.session))

    return Starlette(
        routes=[Route("/{path:path}", endpoint)],
        middleware=[Middleware(SessionMiddleware, store=store, secret_key=SECRET)],
    )


def fastapi_app(store: SessionStore | None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, secret_key=SECRET)  # built lazily

    @app.get("/{path:path}")
    async def endpoint(path: str, request: Request) -> Any:
        return _handle(path, get_session(request))

    return app


def flask_app(store: SessionStore | None) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    init_app(app, store=store)

    @app.get("/<path:path>")
    def endpoint(path: str) -> Any:
        return _handle(path, get_session(flask.request))

    return app


def flask_with_middleware(store: SessionStore | None) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/<path:path>")
    def endpoint(path: str) -> Any:
        return _handle(path, get_session(flask.request))

    app.wsgi_app = WSGISessionMiddleware(app.wsgi_app, store=store, secret_key=SECRET)  # type: ignore[method-assign]
    return app


def plain_wsgi(store: SessionStore | None) -> WSGISessionMiddleware:
    @WerkzeugRequest.application
    def app(request: WerkzeugRequest) -> WerkzeugResponse:
        import json

        body = json.dumps(_handle(request.path, get_session(request)))
        return WerkzeugResponse(body, content_type="application/json")

    return WSGISessionMiddleware(app, store=store, secret_key=SECRET)


# -- the sync client kinds ---------------------------------------------------------------------


@dataclass
class Setup:
    client: Any
    app: Any
    get: Callable[[str], Any]


def _httpx_get(client: Any) -> Callable[[str], Any]:
    return lambda path: client.get(path).json()


def _werkzeug_get(client: Any) -> Callable[[str], Any]:
    return lambda path: client.get(path).json


def _testclient(app: Any) -> Setup:
    client = TestClient(app)
    return Setup(client, app, _httpx_get(client))


def _httpx_wsgi(app: Any) -> Setup:
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url=BASE)
    return Setup(client, app, _httpx_get(client))


def _flask_client(app: Any) -> Setup:
    client = app.test_client()
    return Setup(client, app, _werkzeug_get(client))


def _werkzeug_client(app: Any) -> Setup:
    client = WerkzeugClient(app)
    return Setup(client, app, _werkzeug_get(client))


SYNC_KINDS: dict[str, tuple[Callable[[SessionStore | None], Any], Callable[[Any], Setup]]] = {
    "starlette-testclient": (starlette_app, _testclient),
    "fastapi-testclient": (fastapi_app, _testclient),
    "httpx-wsgi-flask": (flask_app, _httpx_wsgi),
    "httpx-wsgi-middleware": (plain_wsgi, _httpx_wsgi),
    "flask-client": (flask_app, _flask_client),
    "flask-client-middleware": (flask_with_middleware, _flask_client),
    "werkzeug-client": (plain_wsgi, _werkzeug_client),
}


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture(params=list(SYNC_KINDS))
def setup(request: pytest.FixtureRequest, store_kind: str, tmp_path: Any) -> Iterator[Setup]:
    build_app, build_client = SYNC_KINDS[request.param]
    store = make_store(store_kind, tmp_path)
    built = build_client(build_app(store))
    yield built
    close = getattr(built.client, "close", None)
    if close is not None:
        close()
    if store is not None:
        store.close()


def test_edit_session_puts_the_session_in_the_clients_jar(setup: Setup) -> None:
    with edit_session(setup.client, setup.app) as session:
        assert isinstance(session, Session)
        assert dict(session) == {}
        session["user_id"] = "42"
    assert setup.get("/read") == {"user_id": "42"}


def test_edit_session_edits_what_the_app_stored(setup: Setup) -> None:
    setup.get("/set/cart/3")
    with edit_session(setup.client, setup.app) as session:
        assert session["cart"] == "3"
        session["user_id"] = "42"
        del session["cart"]
    assert setup.get("/read") == {"user_id": "42"}


def test_read_session_reads_and_saves_nothing(setup: Setup) -> None:
    assert read_session(setup.client, setup.app) == {}
    setup.get("/set/cart/3")
    data = read_session(setup.client, setup.app)
    assert data == {"cart": "3"}
    data["cart"] = "changed"  # a plain dict: changing it changes nothing stored
    assert read_session(setup.client, setup.app) == {"cart": "3"}


def test_a_block_that_raises_saves_nothing(setup: Setup) -> None:
    def failing_block() -> None:
        with edit_session(setup.client, setup.app) as session:
            session["user_id"] = "42"
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_block()
    assert setup.get("/read") == {}


# The cookie store keeps no stale keys (it has no server state): the server-side kinds only.
@pytest.mark.parametrize("store_kind", [kind for kind in STORE_KINDS if kind != "cookie"])
def test_a_stale_cookie_follows_the_middleware_rules(
    setup: Setup, store_kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup.get("/set/cart/3")
    with edit_session(setup.client, setup.app) as session:
        old_key = session.session_key
    assert old_key is not None
    old_cookie = _jar_value(setup.client)
    setup.get("/rotate")  # login: the old key is now stale
    new_cookie = _jar_value(setup.client)
    _put_cookie(setup.client, old_cookie)  # a request the browser sent before it saw it
    with caplog.at_level(logging.WARNING), edit_session(setup.client, setup.app) as session:
        assert dict(session) == {}  # never the old data
        session["late"] = "write"
    assert _jar_value(setup.client) == old_cookie  # the cookie is not touched
    assert any("was not saved" in record.getMessage() for record in caplog.records)
    _put_cookie(setup.client, new_cookie)
    assert setup.get("/read") == {"cart": "3"}


def test_an_unserializable_value_raises_at_the_end_of_the_block(setup: Setup) -> None:
    with (
        pytest.raises(SessionSerializationError),
        edit_session(setup.client, setup.app) as session,
    ):
        session["bad"] = object()
    assert setup.get("/read") == {}


def _is_httpx(client: Any) -> bool:
    return not hasattr(client, "get_cookie")  # httpx, or httpx2 (Starlette's TestClient)


def _jar_value(client: Any) -> str:
    if _is_httpx(client):
        value = client.cookies.get("sessionid") or client.cookies.get("session")
        assert value is not None
        return str(value)
    cookie = client.get_cookie("sessionid") or client.get_cookie("session")
    assert cookie is not None
    return str(cookie.value)


def _put_cookie(client: Any, value: str) -> None:
    if _is_httpx(client):
        name = "session" if "session" in client.cookies else "sessionid"
        client.cookies.clear()
        client.cookies.set(name, value)
        return
    name = "session" if client.get_cookie("session") is not None else "sessionid"
    client.set_cookie(name, value)


# -- finding the session layer -----------------------------------------------------------------


def test_flask_sessions_are_flask_sessions() -> None:
    app = flask_app(MemoryStore())
    client = app.test_client()
    with edit_session(client, app) as session:
        assert isinstance(session, FlaskSession)
        session.permanent = True
        session["user_id"] = "42"
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.max_age == 31 * 24 * 3600  # PERMANENT_SESSION_LIFETIME


def test_starlette_app_found_before_and_after_its_first_request() -> None:
    store = MemoryStore()
    app = starlette_app(store)
    with TestClient(app) as client:  # entering builds the middleware stack
        assert app.middleware_stack is not None
        with edit_session(client, app) as session:
            session["a"] = "1"
        assert client.get("/read").json() == {"a": "1"}
    fresh = fastapi_app(store)
    assert fresh.middleware_stack is None  # add_middleware: not built yet
    other = TestClient(fresh)
    with edit_session(other, fresh) as session:
        session["b"] = "2"
    assert other.get("/read").json() == {"b": "2"}


def test_edit_session_replaces_a_cookie_the_test_put_in_by_hand() -> None:
    """``client.cookies.set(name, value)`` makes a cookie without a domain; the helper's
    cookie must take its place, not sit beside it (two would be a duplicated cookie)."""
    store = MemoryStore()
    app = starlette_app(store)
    first = TestClient(app)
    with edit_session(first, app) as session:
        session["a"] = "1"
    value = first.cookies["sessionid"]
    client = TestClient(app)
    client.cookies.set("sessionid", value)  # the usual way to hand a test client a cookie
    client.cookies.set("sessionid", "another-host", domain="other.example")
    with edit_session(client, app) as session:
        session["b"] = "2"
    assert client.get("/read").json() == {"a": "1", "b": "2"}
    mine = [cookie for cookie in client.cookies.jar if cookie.domain != "other.example"]
    assert [cookie.name for cookie in mine] == ["sessionid"]
    others = [cookie.value for cookie in client.cookies.jar if cookie.domain == "other.example"]
    assert others == ["another-host"]  # another host's cookie of that name is left alone


def test_the_middleware_itself_is_accepted() -> None:
    middleware = plain_wsgi(MemoryStore())
    client = WerkzeugClient(middleware)
    with edit_session(client, middleware) as session:
        session["a"] = "1"
    assert client.get("/read").json == {"a": "1"}


def test_an_app_without_sessionware_is_refused() -> None:
    app = Starlette()
    with pytest.raises(LookupError, match="no sessionware"):
        read_session(TestClient(app), app)


def test_a_client_without_base_url_needs_url() -> None:
    app = flask_app(MemoryStore())
    client = httpx.Client(transport=httpx.WSGITransport(app=app))
    with pytest.raises(ValueError, match="base_url"):
        read_session(client, app)
    with edit_session(client, app, url="http://localhost/") as session:
        session["a"] = "1"
    assert client.get("http://localhost/read").json() == {"a": "1"}


def test_an_unknown_client_is_refused() -> None:
    app = flask_app(MemoryStore())
    with pytest.raises(TypeError, match="not a client"):
        read_session(object(), app)


# -- async: httpx.AsyncClient ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "cookie"])
@pytest.mark.anyio
async def test_aedit_session_with_an_async_client(kind: str, tmp_path: Any) -> None:
    store = make_store(kind, tmp_path)
    app = fastapi_app(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        async with aedit_session(client, app) as session:
            session["user_id"] = "42"
        assert (await client.get("/read")).json() == {"user_id": "42"}
        await client.get("/set/cart/3")
        assert await aread_session(client, app) == {"user_id": "42", "cart": "3"}
        with edit_session(client, app) as session:  # the sync helper works with it too
            session["more"] = "1"
        assert read_session(client, app) == {"user_id": "42", "cart": "3", "more": "1"}


@pytest.mark.anyio
async def test_aedit_session_with_a_flask_client() -> None:
    app = flask_app(MemoryStore())
    client = app.test_client()
    async with aedit_session(client, app) as session:
        session["user_id"] = "42"
    assert client.get("/read").json == {"user_id": "42"}
