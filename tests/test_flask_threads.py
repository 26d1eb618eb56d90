"""``flask.session`` under a real multi-threaded WSGI server (waitress on 127.0.0.1):
16 client threads x 20 requests on one session, each setting its own key; every request
succeeds and every key is kept (the integration saves deltas, as the middlewares do)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import flask
import httpx
import pytest
from flask.typing import ResponseReturnValue
from waitress.server import create_server

from sessionware.flask import init_app
from sessionware.stores.base import SessionStore
from tests.servers import free_port
from tests.stores.factories import make_store

THREADS = 16
REQUESTS = 20

# SQLStore and RedisStore are being moved to the new store contract: these rows run
# once they are (remove the marks).


def flask_app(store: SessionStore) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config["SECRET_KEY"] = "threads-secret-" + "t" * 32
    init_app(app, store=store)

    @app.get("/set/<name>")
    def set_key(name: str) -> ResponseReturnValue:
        flask.session[name] = flask.session.get("start", 0)
        return {"ok": True}

    @app.get("/read")
    def read() -> ResponseReturnValue:
        return sorted(flask.session.keys())

    return app


def wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    pytest.fail(f"waitress did not listen on port {port}")


@pytest.fixture(params=["memory", "sqlite", "redis"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with make_store(request.param, tmp_path) as store:
        port = free_port()
        wsgi = create_server(flask_app(store), host="127.0.0.1", port=port, threads=THREADS)
        thread = threading.Thread(target=wsgi.run, daemon=True)
        thread.start()
        wait_until_listening(port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            wsgi.close()
            thread.join(timeout=10)


def test_16_threads_x_20_requests_keep_every_key(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(base_url=server) as client:
        client.get("/set/start")
        cookie = {"Cookie": f"session={client.cookies['session']}"}
    failures: list[str] = []

    def hammer(thread: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as own:
            for i in range(REQUESTS):
                try:
                    response = own.get(f"/set/t{thread}-{i}", headers=cookie)
                except httpx.HTTPError as exc:  # reported in the main thread
                    failures.append(repr(exc))
                    continue
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")

    with caplog.at_level(logging.WARNING):
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    # Our own warnings only: waitress may say its task queue filled up under the load.
    ours = [r for r in caplog.records if r.name.startswith(("sessionware", "flask"))]
    assert [r for r in ours if r.levelno >= logging.WARNING] == []
    keys = httpx.get(server + "/read", headers=cookie).json()
    expected = {"start", *(f"t{t}-{i}" for t in range(THREADS) for i in range(REQUESTS))}
    assert set(keys) == expected
