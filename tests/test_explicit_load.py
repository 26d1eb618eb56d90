"""ASGI's explicit mode (API.md §2): with ``autoload=False`` only routes that ask for the
session load it, with ``await load_session(request)`` or ``Depends(load_session)``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from sessionware import Session, SessionMiddleware, load_session
from sessionware.stores import MemoryStore, RedisStore, SessionStore
from tests.counting import CountingStore


def make_app(store: SessionStore) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, autoload=False)

    @app.get("/login")
    async def login(session: Session = Depends(load_session)) -> dict[str, str]:  # noqa: B008
        session["user"] = "ada"
        return {"ok": "yes"}

    @app.get("/me")
    async def me(request: Request) -> dict[str, object]:
        session = await load_session(request)
        return {"user": session.get("user")}

    @app.get("/static")
    async def static() -> dict[str, str]:
        return {"static": "page"}

    @app.get("/forgot")
    async def forgot(request: Request) -> dict[str, object]:
        return {"user": request.session.get("user")}  # never loaded: refused

    return app


@pytest.fixture
def store() -> CountingStore:
    return CountingStore(MemoryStore())


@pytest.fixture
def client(store: CountingStore) -> Iterator[TestClient]:
    with TestClient(make_app(store), raise_server_exceptions=False) as client:
        yield client


def test_a_route_that_never_asks_makes_no_store_call_even_with_a_cookie(
    client: TestClient, store: CountingStore
) -> None:
    client.get("/login")
    store.reset()
    for _ in range(3):
        response = client.get("/static")
        assert response.status_code == 200
        assert response.headers.get("set-cookie") is None
    assert store.total == 0


def test_depends_and_await_load_the_same_session(client: TestClient, store: CountingStore) -> None:
    assert client.get("/login").json() == {"ok": "yes"}
    store.reset()
    assert client.get("/me").json() == {"user": "ada"}
    assert store.calls["load"] == 1


def test_using_a_session_that_was_not_loaded_is_a_clear_error() -> None:
    app = make_app(MemoryStore())
    with TestClient(app) as client:
        client.get("/login")
        with pytest.raises(RuntimeError, match="load_session"):
            client.get("/forgot")


def test_a_store_failure_while_loading_is_a_503() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", timeout=0.2)
    with TestClient(make_app(store), raise_server_exceptions=False) as client:
        client.cookies.set("sessionid", "A" * 43)
        response = client.get("/me")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
