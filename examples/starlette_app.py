"""Starlette with sessions kept in SQLite: log in, log out, count visits.

Run:  uvicorn examples.starlette_app:app
Then: curl -c jar -b jar localhost:8000/ ; curl -c jar -b jar -X POST localhost:8000/login/ann
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sessionware import SessionMiddleware, get_session
from sessionware.stores import SQLStore

# Creates sessions.db and its table at the first request; nothing connects before.
store = SQLStore("sqlite:///sessions.db")


async def home(request: Request) -> Response:
    # request.session is the session; reads and writes are Django's.
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return JSONResponse({"user": request.session.get("username"), "visits": visits})


async def login(request: Request) -> Response:
    session = get_session(request)  # typed access to cycle_key(), flush(), set_expiry()
    session.cycle_key()  # a new key at login: a key planted before login is useless
    session["username"] = request.path_params["username"]
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    get_session(request).flush()  # data and stored record gone, cookie deleted
    return RedirectResponse("/", status_code=303)


app = SessionMiddleware(
    Starlette(
        routes=[
            Route("/", home),
            Route("/login/{username}", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
        ]
    ),
    store=store,
)
