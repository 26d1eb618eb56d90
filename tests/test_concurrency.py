"""No lost updates (API.md §5): concurrent requests on one session, on every server store."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from sessionware import WSGISessionMiddleware, get_session
from sessionware.stores.base import Record, SessionStore
from tests.clients import ServerLikeWSGITransport
from tests.counting import CountingStore
from tests.served_app import make_app
from tests.stores.factories import ALL_KINDS, make_store

BASE = "http://testserver"


@pytest.fixture(params=ALL_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CountingStore]:
    with make_store(request.param, tmp_path) as inner:
        yield CountingStore(inner)


def wsgi_app(store: SessionStore) -> WSGISessionMiddleware:
    """The plain-WSGI twin of ``tests.served_app``: slow-set, read and flush."""
    from urllib.parse import parse_qsl

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        session = get_session(environ)
        params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        path = environ["PATH_INFO"]
        if path == "/slow-set":
            session.get("anything")
            time.sleep(float(params.get("delay", "0")))
            session[params["k"]] = params.get("v", "1")
        elif path == "/flush":
            session.flush()
        body = json.dumps(sorted(session.keys())).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return WSGISessionMiddleware(app, store=store)


@pytest.mark.anyio
async def test_asgi_50_concurrent_requests_each_keep_their_key(store: CountingStore) -> None:
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await client.get("/slow-set?k=start")
        cookie = {"Cookie": f"sessionid={client.cookies['sessionid']}"}

        async def one(i: int) -> None:
            response = await client.get(f"/slow-set?k=k{i}&delay=0.02", headers=cookie)
            assert response.status_code == 200

        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(one, i)
        data = (await client.get("/read")).json()["data"]
    assert set(data) == {"start", *(f"k{i}" for i in range(50))}
    assert store.calls["insert"] == 1  # every later save was a delta update


def test_wsgi_16_threads_x_20_requests_keep_all_320_keys(store: CountingStore) -> None:
    app = wsgi_app(store)
    with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as client:
        client.get("/slow-set?k=start")
        cookie = client.cookies["sessionid"]
    errors: list[BaseException] = []

    def worker(thread: int) -> None:
        with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as own:
            for i in range(20):
                try:
                    response = own.get(
                        f"/slow-set?k=t{thread}-{i}", headers={"Cookie": f"sessionid={cookie}"}
                    )
                    assert response.status_code == 200
                except BaseException as exc:  # re-raised in the main thread below
                    errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as client:
        keys = client.get("/read", headers={"Cookie": f"sessionid={cookie}"}).json()
    expected = {"start", *(f"t{t}-{i}" for t in range(16) for i in range(20))}
    assert set(keys) == expected


@pytest.mark.anyio
async def test_asgi_logout_race_never_resurrects(
    store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    transport = httpx.ASGITransport(app=make_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        await client.get("/slow-set?k=user&v=ada")
        old = client.cookies["sessionid"]
        cookie = {"Cookie": f"sessionid={old}"}
        slow: dict[str, httpx.Response] = {}

        async def request_b() -> None:  # loads, waits, then writes to the old key
            slow["b"] = await client.get("/slow-set?k=late&delay=0.3", headers=cookie)

        with caplog.at_level(logging.WARNING, logger="sessionware"):
            async with anyio.create_task_group() as group:
                group.start_soon(request_b)
                await anyio.sleep(0.1)
                flushed = await client.get("/flush", headers=cookie)  # request A: logout
        assert "Max-Age=0" in flushed.headers["set-cookie"]
        # B's save is dropped and its response leaves the cookie alone: the browser keeps
        # what the logout sent (a parallel login's new cookie would survive the same way).
        assert slow["b"].headers.get("set-cookie") is None
        replay = await client.get("/read", headers=cookie)
        assert replay.json()["data"] == {}
    assert store.calls["insert"] == 1  # B's write went nowhere: no new record
    assert not isinstance(store.inner.load(old, time.time()), Record)
    assert any("a concurrent request ended its key first" in r.getMessage() for r in caplog.records)
    assert all(old not in r.getMessage() for r in caplog.records)


def test_wsgi_logout_race_never_resurrects(store: CountingStore) -> None:
    app = wsgi_app(store)
    with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as client:
        client.get("/slow-set?k=user")
        old = client.cookies["sessionid"]
    headers = {"Cookie": f"sessionid={old}"}
    results: dict[str, httpx.Response] = {}

    def request_b() -> None:
        with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as own:
            results["b"] = own.get("/slow-set?k=late&delay=0.3", headers=headers)

    thread = threading.Thread(target=request_b)
    thread.start()
    time.sleep(0.1)
    with httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE) as client:
        client.get("/flush", headers=headers)
    thread.join()
    assert results["b"].headers.get("set-cookie") is None
    assert not isinstance(store.inner.load(old, time.time()), Record)
    assert store.calls["insert"] == 1
