"""A real uvicorn server on 127.0.0.1 and a cookie-keeping HTTP client, like a browser."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from sessionware._options import Options
from sessionware.stores import SQLStore
from tests.apps import build_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server_url(tmp_path: Path) -> Iterator[str]:
    store = SQLStore(f"sqlite:///{tmp_path / 'sessions.db'}")
    app = build_app("starlette", Options(store=store))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


def test_login_work_logout_over_real_http(server_url: str) -> None:
    with httpx.Client(base_url=server_url) as client:
        first = client.get("/noop")
        assert "set-cookie" not in first.headers
        client.get("/set?k=user&v=ada")
        anonymous_cookie = client.cookies["sessionid"]
        login = client.get("/cycle").json()
        assert login["data"] == {"user": "ada"}
        assert client.cookies["sessionid"] != anonymous_cookie
        client.get("/set?k=cart&v=apple")
        assert client.get("/read").json()["data"] == {"user": "ada", "cart": "apple"}
        logged_in_cookie = client.cookies["sessionid"]
        logout = client.get("/flush")
        assert "Max-Age=0" in logout.headers["set-cookie"]
        assert "sessionid" not in client.cookies
    with httpx.Client(base_url=server_url) as replay:
        for old in (anonymous_cookie, logged_in_cookie):
            response = replay.get("/read", headers={"Cookie": f"sessionid={old}"})
            assert response.json() == {"key": None, "data": {}}
