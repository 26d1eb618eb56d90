"""Coming from Starlette's ``SessionMiddleware``: its session behaviours, on sessionware.

The same scenarios Starlette checks for its own middleware (view, update and clear a
session, expiry, ``Secure`` cookies, a cookie path, a bad cookie, browser-session cookies,
a cookie domain), written for sessionware and run on the cookie store (Starlette's model)
and on a server-side store. The deliberate differences are listed in the README's
migration section: sessionware's option names (``secure``, ``samesite``, ``cookie_name``),
the ``sessionid`` cookie name, capitalised cookie attributes, and ``max_age`` that must be
positive (an expired session comes from ``set_expiry()`` instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from sessionware import SessionMiddleware, get_session
from sessionware.stores import MemoryStore

SECRET = "starlette-port-secret-0123456789abcdef"


def view_session(request: Request) -> JSONResponse:
    return JSONResponse({"session": request.session})


async def update_session(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse({"session": request.session})


async def clear_session(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({"session": request.session})


async def expire_session(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    get_session(request).set_expiry(-1)  # saved already expired, as Django does
    return JSONResponse({"session": request.session})


ROUTES = [
    Route("/view_session", endpoint=view_session),
    Route("/update_session", endpoint=update_session, methods=["POST"]),
    Route("/clear_session", endpoint=clear_session, methods=["POST"]),
    Route("/expire_session", endpoint=expire_session, methods=["POST"]),
]

MakeClient = Callable[..., TestClient]


@pytest.fixture(params=["cookie", "memory"])
def store_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "cookie":
        return {"secret_key": SECRET}  # Starlette's model: the session in a signed cookie
    return {"store": MemoryStore()}


@pytest.fixture(params=["asyncio", "trio"])
def make_client(request: pytest.FixtureRequest) -> MakeClient:
    def make(app: Any, **kwargs: Any) -> TestClient:
        return TestClient(app, backend=request.param, **kwargs)

    return make


def site(options: dict[str, Any], routes: list[Any] = ROUTES) -> Starlette:
    return Starlette(routes=routes, middleware=[Middleware(SessionMiddleware, **options)])


def test_view_update_and_clear_the_session(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    client = make_client(site(store_options))
    assert client.get("/view_session").json() == {"session": {}}
    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    max_age = re.search(r"; Max-Age=([0-9]+);", response.headers["set-cookie"])
    assert max_age is not None
    assert int(max_age[1]) == 14 * 24 * 3600
    assert client.get("/view_session").json() == {"session": {"some": "data"}}
    assert client.post("/clear_session").json() == {"session": {}}
    assert client.get("/view_session").json() == {"session": {}}


def test_an_expired_session_reads_as_empty(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    app = site(store_options)
    response = make_client(app).post("/expire_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    header = response.headers["set-cookie"]
    assert "Max-Age=0" in header
    value = re.search(r"sessionid=([^;]*);", header)
    assert value is not None
    replayed = make_client(app, cookies={"sessionid": value[1]})  # a client that kept it
    assert replayed.get("/view_session").json() == {"session": {}}


def test_a_secure_cookie_only_comes_back_over_https(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    app = site({**store_options, "secure": True})
    secure = make_client(app, base_url="https://testserver")
    plain = make_client(app, base_url="http://testserver")
    assert plain.post("/update_session", json={"some": "data"}).json() == {
        "session": {"some": "data"}
    }
    assert plain.get("/view_session").json() == {"session": {}}  # the client kept it back
    assert secure.post("/update_session", json={"some": "data"}).status_code == 200
    assert secure.get("/view_session").json() == {"session": {"some": "data"}}
    assert secure.post("/clear_session").json() == {"session": {}}
    assert secure.get("/view_session").json() == {"session": {}}


def test_a_mounted_app_sets_its_cookie_path(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    inner = site({**store_options, "path": "/second_app"}, ROUTES[1:2])
    app = Starlette(routes=[Mount("/second_app", app=inner)])
    client = make_client(app)
    response = client.post("/second_app/update_session", json={"some": "data"})
    assert response.status_code == 200
    path = re.search(r"; Path=(\S+);", response.headers["set-cookie"])
    assert path is not None
    assert path[1] == "/second_app"


def test_a_bogus_cookie_is_an_empty_session_not_an_error(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    app = site(store_options)
    assert make_client(app).post("/update_session", json={"some": "data"}).status_code == 200
    bogus = make_client(app, cookies={"sessionid": "invalid"})
    assert bogus.get("/view_session").json() == {"session": {}}


def test_max_age_none_makes_a_browser_session_cookie(
    make_client: MakeClient, store_options: dict[str, Any]
) -> None:
    client = make_client(site({**store_options, "max_age": None}))
    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert "Max-Age" not in response.headers["set-cookie"]
    client.cookies.delete("sessionid")  # the browser closed
    assert client.get("/view_session").json() == {"session": {}}


def test_a_cookie_domain_is_sent(make_client: MakeClient, store_options: dict[str, Any]) -> None:
    client = make_client(site({**store_options, "domain": ".example.com"}))
    response = client.post("/update_session", json={"some": "data"})
    assert response.json() == {"session": {"some": "data"}}
    assert "Domain=.example.com" in response.headers["set-cookie"]
    client.cookies.delete("sessionid")
    assert client.get("/view_session").json() == {"session": {}}
