"""A real multi-threaded WSGI server (waitress) on 127.0.0.1, with 16 client threads
hammering one session: no request fails, no exception is logged, no key is lost."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from waitress.server import create_server

from sessionware import WSGISessionMiddleware, get_session
from sessionware.stores import SQLStore
from tests.test_uvicorn import free_port


def flask_app(store: SQLStore) -> Flask:
    app = Flask(__name__)

    @app.get("/set/<name>")
    def set_key(name: str) -> ResponseReturnValue:
        session = get_session(request.environ)
        session[name] = session.get("counter", 0)
        return jsonify(ok=True)

    @app.get("/read")
    def read() -> ResponseReturnValue:
        return jsonify(sorted(get_session(request.environ).keys()))

    app.wsgi_app = WSGISessionMiddleware(app.wsgi_app, store=store)  # type: ignore[method-assign]
    return app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    store = SQLStore(f"sqlite:///{tmp_path / 'wsgi.db'}")
    port = free_port()
    wsgi = create_server(flask_app(store), host="127.0.0.1", port=port, threads=16)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    wsgi.close()
    store.close()


def test_16_threads_hammer_one_session(server: str, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=server) as client:
        client.get("/set/start")
        cookie = {"Cookie": f"sessionid={client.cookies['sessionid']}"}
    failures: list[str] = []

    def hammer(thread: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as own:
            for i in range(25):
                response = own.get(f"/set/t{thread}-{i}", headers=cookie)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    keys = httpx.get(server + "/read", headers=cookie).json()
    assert set(keys) == {"start", *(f"t{t}-{i}" for t in range(16) for i in range(25))}
