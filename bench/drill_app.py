"""The app the failover drills serve: ``uvicorn --factory bench.drill_app:app``.

A Starlette app behind ``SessionMiddleware`` on a ``RedisStore`` at ``SWDRILL_STORE_URL``
(a ``redis+cluster://`` or ``redis+sentinel://`` URL with its ``?prefix=``, ``timeout`` and
``wait_replicas`` options), tracking users (``user_key``) as a real login would:

- ``/login?user=U`` logs in (a new key: a rotation) and stores the user id;
- ``/write?k=K&v=V`` sets one key of a logged-in session (401 without one, as an app
  whose pages need a login); ``/read`` answers the session's data as JSON;
- ``/logout`` flushes the session (the old key becomes a stale marker).
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from sessionware import SessionMiddleware, get_session
from sessionware.stores._urls import store_from_url

URL_VAR = "SWDRILL_STORE_URL"


async def login(request: Request) -> JSONResponse:
    session = get_session(request)
    session.cycle_key()
    session["user_id"] = request.query_params["user"]
    return JSONResponse({"ok": True})


async def write(request: Request) -> JSONResponse:
    session = get_session(request)
    if "user_id" not in session:
        return JSONResponse({"error": "log in first"}, status_code=401)
    session[request.query_params["k"]] = request.query_params.get("v", "1")
    return JSONResponse({"ok": True})


async def read(request: Request) -> JSONResponse:
    return JSONResponse(dict(get_session(request)))


async def logout(request: Request) -> JSONResponse:
    get_session(request).flush()
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/login", login),
    Route("/write", write),
    Route("/read", read),
    Route("/logout", logout),
]


def app() -> ASGIApp:
    store = store_from_url(os.environ[URL_VAR])
    return SessionMiddleware(Starlette(routes=ROUTES), store=store, user_key="user_id")
