"""Each example in examples/ keeps a session across requests, through its own protocol:
httpx's ASGITransport for the ASGI apps, its WSGITransport for Flask and plain WSGI."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

BASE = "http://testserver"

Load = Callable[[str], ModuleType]


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Load]:
    """Import an example afresh inside ``tmp_path``, so its relative paths land there."""
    monkeypatch.chdir(tmp_path)
    loaded: list[ModuleType] = []

    def load(name: str) -> ModuleType:
        sys.modules.pop(f"examples.{name}", None)
        module = importlib.import_module(f"examples.{name}")
        loaded.append(module)
        return module

    yield load
    for module in loaded:
        store = getattr(module, "store", None)
        if store is not None:
            store.close()
        sys.modules.pop(module.__name__, None)


def asgi_client(module: ModuleType) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=module.app), base_url=BASE)


def wsgi_client(module: ModuleType) -> httpx.Client:
    return httpx.Client(transport=httpx.WSGITransport(app=module.app), base_url=BASE)


@pytest.mark.anyio
async def test_starlette_app(load: Load, tmp_path: Path) -> None:
    async with asgi_client(load("starlette_app")) as client:
        assert (await client.get("/")).json() == {"user": None, "visits": 1}
        assert (await client.get("/")).json() == {"user": None, "visits": 2}
        before = client.cookies["sessionid"]
        login = await client.post("/login/ann")
        assert login.status_code == 303
        assert client.cookies["sessionid"] != before  # cycle_key() at login
        assert (await client.get("/")).json() == {"user": "ann", "visits": 3}
        await client.post("/logout")
        assert "sessionid" not in client.cookies
        assert (await client.get("/")).json() == {"user": None, "visits": 1}
    assert (tmp_path / "sessions.db").exists()


@pytest.mark.anyio
async def test_fastapi_app(load: Load) -> None:
    async with asgi_client(load("fastapi_app")) as client:
        assert (await client.get("/me")).status_code == 401
        assert (await client.post("/login", json={"username": "ann"})).json() == {"username": "ann"}
        assert (await client.get("/me")).json() == {"username": "ann", "seen": 1}
        assert (await client.get("/me")).json() == {"username": "ann", "seen": 2}
        assert (await client.post("/logout")).json() == {"logged_out": True}
        assert (await client.get("/me")).status_code == 401


@pytest.mark.anyio
async def test_raw_asgi(load: Load) -> None:
    async with asgi_client(load("raw_asgi")) as client:
        assert (await client.get("/")).text == "count: 1\n"
        assert (await client.get("/")).text == "count: 2\n"
        assert (await client.get("/reset")).text == "reset\n"
        assert "sessionid" not in client.cookies
        assert (await client.get("/")).text == "count: 1\n"


def test_flask_app(load: Load, tmp_path: Path) -> None:
    with wsgi_client(load("flask_app")) as client:
        assert client.get("/").json() == {"user": None, "visits": 1}
        assert client.get("/").json() == {"user": None, "visits": 2}
        assert client.post("/login", data={"username": "ann"}).status_code == 303
        assert client.get("/").json() == {"user": "ann", "visits": 3}
        files = (tmp_path / "flask-sessions").glob("*.session")
        # The session, and the stale marker of the key the login rotated away.
        assert len(list(files)) == 2
        client.post("/logout")
        assert "sessionid" not in client.cookies
        assert client.get("/").json() == {"user": None, "visits": 1}


def test_plain_wsgi(load: Load) -> None:
    with wsgi_client(load("plain_wsgi")) as client:
        assert client.get("/").text == "count: 1\n"
        assert client.get("/").text == "count: 2\n"
        assert client.get("/reset").text == "reset\n"
        assert "sessionid" not in client.cookies
        assert client.get("/").text == "count: 1\n"
