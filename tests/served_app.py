"""The app that the multi-process tests serve with uvicorn, on a store named by the environment.

``SESSIONWARE_TEST_STORE`` is ``redis``, ``postgres``, or ``url`` (a Redis store at
``SESSIONWARE_TEST_STORE_URL``, say a Redis Cluster); ``SESSIONWARE_TEST_NAMESPACE`` is
the Redis prefix or SQL table the test created for itself.
"""

from __future__ import annotations

import os

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sessionware import SessionMiddleware, get_session
from sessionware.stores import RedisStore, SessionStore, SQLStore
from tests.servers import POSTGRES_URL, REDIS_URL


async def slow_set(request: Request) -> JSONResponse:
    """Read, wait (as a handler awaiting a database would), then set one key."""
    session = get_session(request)
    session.get("anything")
    await anyio.sleep(float(request.query_params.get("delay", "0")))
    session[request.query_params["k"]] = request.query_params.get("v", "1")
    return JSONResponse({"pid": os.getpid()})


async def read(request: Request) -> JSONResponse:
    session = get_session(request)
    return JSONResponse({"key": session.session_key, "data": dict(session), "pid": os.getpid()})


async def flush(request: Request) -> JSONResponse:
    get_session(request).flush()
    return JSONResponse({})


ROUTES = [Route("/slow-set", slow_set), Route("/read", read), Route("/flush", flush)]


def store_from_environment() -> SessionStore:
    kind = os.environ.get("SESSIONWARE_TEST_STORE", "redis")
    namespace = os.environ.get("SESSIONWARE_TEST_NAMESPACE", "sessionware_served")
    if kind == "postgres":
        return SQLStore(POSTGRES_URL, table=namespace)
    url = os.environ["SESSIONWARE_TEST_STORE_URL"] if kind == "url" else REDIS_URL
    return RedisStore(url, prefix=namespace + ":")


def make_app(store: SessionStore) -> SessionMiddleware:
    return SessionMiddleware(Starlette(routes=ROUTES), store=store)


app = make_app(store_from_environment()) if "SESSIONWARE_TEST_STORE" in os.environ else None
