"""A store that fails after the app has run (API.md §6): the built-in 503, ``on_save_error=
"keep"``, and ``error_app``, under ASGI and WSGI, with a private redis-server stopped
between the session's load and its save. The app's handler has run in every case."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import anyio
import httpx
import pytest

from sessionware import SessionMiddleware, SessionStoreError, WSGISessionMiddleware
from sessionware._options import Options
from sessionware.stores import RedisStore
from sessionware.stores.base import Loaded, SessionStore
from tests.apps import build_app
from tests.clients import Client
from tests.counting import CountingStore
from tests.servers import PrivateRedis

pytestmark = pytest.mark.redis

APP_KINDS = ["starlette", "fastapi", "flask", "plain-wsgi"]


class StopsAfterLoad(CountingStore):
    """Stops the server right after the next load: the save that follows fails."""

    def __init__(self, inner: SessionStore, server: PrivateRedis) -> None:
        super().__init__(inner)
        self.server = server
        self.armed = False

    def _maybe_stop(self) -> None:
        if self.armed:
            self.armed = False
            self.server.stop()

    def load(self, key: str, now: float) -> Loaded:
        loaded = super().load(key, now)
        self._maybe_stop()
        return loaded

    async def aload(self, key: str, now: float) -> Loaded:
        loaded = await super().aload(key, now)
        self._maybe_stop()
        return loaded


@pytest.fixture
def store(private_redis: PrivateRedis) -> Iterator[StopsAfterLoad]:
    inner = RedisStore(private_redis.url, timeout=0.3)
    yield StopsAfterLoad(inner, private_redis)
    inner.close()


Make = Callable[..., Client]


@pytest.fixture(params=APP_KINDS)
def make(request: pytest.FixtureRequest, store: StopsAfterLoad) -> Iterator[Make]:
    kind: str = request.param
    with ExitStack() as stack:

        def client(**options: Any) -> Client:
            app = build_app(kind, Options(store=store, **options))  # type: ignore[typeddict-item]
            return Client(app, kind in ("starlette", "fastapi"), stack)

        yield client


def logged_in(client: Client, store: StopsAfterLoad) -> None:
    assert client.get("/set?k=user&v=ada").status_code == 200
    store.armed = True


def test_by_default_a_failed_save_answers_503_instead_of_the_app(
    make: Make, store: StopsAfterLoad
) -> None:
    client = make()
    logged_in(client, store)
    response = client.get("/set?k=order&v=placed")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers.get("set-cookie") is None
    assert b"placed" not in response.content
    assert int(response.headers["content-length"]) == len(response.content)


def test_keep_sends_the_apps_own_response_without_a_cookie(
    make: Make, store: StopsAfterLoad, caplog: pytest.LogCaptureFixture
) -> None:
    client = make(on_save_error="keep")
    logged_in(client, store)
    with caplog.at_level(logging.ERROR):
        response = client.get("/set?k=order&v=placed")
    assert response.status_code == 200
    assert response.json()["data"]["order"] == "placed"  # the handler ran and said so
    assert response.headers.get("set-cookie") is None
    assert "session save failed: SessionStoreError" in caplog.text


async def render_outage_asgi(scope: Any, receive: Any, send: Any) -> None:
    error = scope["sessionware.error"]
    assert isinstance(error, SessionStoreError)
    body = f"our outage page ({type(error).__name__})".encode()
    headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def render_outage_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    error = environ["sessionware.error"]
    assert isinstance(error, SessionStoreError)
    body = f"our outage page ({type(error).__name__})".encode()
    start_response("503 Service Unavailable", [("Content-Type", "text/html")])
    return [body]


def test_error_app_renders_the_outage_page(
    request: pytest.FixtureRequest, make: Make, store: StopsAfterLoad
) -> None:
    asgi = request.node.callspec.params["make"] in ("starlette", "fastapi")
    client = make(error_app=render_outage_asgi if asgi else render_outage_wsgi)
    logged_in(client, store)
    response = client.get("/set?k=order&v=placed")
    assert response.status_code == 503
    assert response.text == "our outage page (SessionStoreError)"
    assert response.headers.get("set-cookie") is None


def test_error_app_also_renders_a_failed_load(
    request: pytest.FixtureRequest, make: Make, store: StopsAfterLoad
) -> None:
    asgi = request.node.callspec.params["make"] in ("starlette", "fastapi")
    client = make(error_app=render_outage_asgi if asgi else render_outage_wsgi)
    client.get("/set?k=user&v=ada")
    store.server.stop()
    response = client.get("/read")
    assert response.status_code == 503
    assert response.text == "our outage page (SessionStoreError)"


# -- a WSGI app that calls start_response from inside its body generator (PEP 3333) ----------


def late_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """Writes to the session, then starts the response only when its body is iterated."""
    environ["sessionware.session"]["order"] = "placed"

    def body() -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "12")])
        yield b"order placed"

    return body()


@pytest.mark.parametrize("on_save_error", ["unavailable", "keep"])
def test_a_generator_app_gets_the_right_response_under_an_outage(
    private_redis: PrivateRedis, on_save_error: str
) -> None:
    inner = RedisStore(private_redis.url, timeout=0.3)
    store = StopsAfterLoad(inner, private_redis)
    app = WSGISessionMiddleware(late_app, store=store, on_save_error=on_save_error)  # type: ignore[arg-type]
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        assert client.get("/").status_code == 200
        store.armed = True
        response = client.get("/")
    inner.close()
    assert response.headers.get("set-cookie") is None
    if on_save_error == "keep":
        assert (response.status_code, response.text) == (200, "order placed")
    else:
        assert response.status_code == 503
        assert b"order placed" not in response.content
        assert int(response.headers["content-length"]) == len(response.content)


def test_a_load_that_fails_in_a_lazy_wsgi_session_is_a_503(private_redis: PrivateRedis) -> None:
    inner = RedisStore(private_redis.url, timeout=0.3)
    app = WSGISessionMiddleware(late_app, store=inner)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        client.get("/")
        private_redis.stop()
        response = client.get("/")
    inner.close()
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_asgi_refuses_the_request_before_the_app_when_the_load_fails(
    private_redis: PrivateRedis,
) -> None:
    ran: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        ran.append(scope["path"])
        scope["session"]["n"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    inner = RedisStore(private_redis.url, timeout=0.3)
    middleware = SessionMiddleware(app, store=inner)

    async def scenario() -> int:
        transport = httpx.ASGITransport(app=middleware)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await client.get("/first")
            private_redis.stop()
            return (await client.get("/second")).status_code

    assert anyio.run(scenario) == 503
    assert ran == ["/first"]  # the app never ran for the request whose session failed
    inner.close()
