"""One test application, written once as a framework-neutral handler, built five ways.

Each route exercises one operation of the session API; the five builders (Starlette,
FastAPI, raw ASGI, Flask, plain WSGI) only translate requests and responses, so the
behaviour suite runs unchanged against both middlewares.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request as FastAPIRequest  # resolved by FastAPI at module level
from starlette.types import Receive, Scope, Send

from sessionware import Session, SessionMiddleware, WSGISessionMiddleware, get_session
from sessionware._options import Options

Reply = tuple[int, list[tuple[str, str]], bytes]

ASGI_KINDS = ["starlette", "fastapi", "raw-asgi"]
WSGI_KINDS = ["flask", "plain-wsgi"]
ALL_KINDS = ASGI_KINDS + WSGI_KINDS


class AppFailure(RuntimeError):
    """Raised by the ``/raise`` route: an exception escaping the app."""


def _json(status: int, value: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    body = json.dumps(value, sort_keys=True, default=str).encode()
    return status, [("Content-Type", "application/json"), *(headers or [])], body


def _state(session: Session) -> dict[str, Any]:
    return {"key": session.session_key, "data": dict(session.items())}


def _expiry_value(raw: str) -> int | dt.timedelta | dt.datetime | None:
    if raw == "none":
        return None
    if raw.startswith("td:"):
        return dt.timedelta(seconds=int(raw[3:]))
    if raw.startswith("at:"):
        return dt.datetime.fromtimestamp(float(raw[3:]), tz=dt.UTC)
    return int(raw)


def handle(path: str, query: str, get: Callable[[], Session]) -> Reply:
    """The whole test app: one branch per session operation (``/noop`` never asks for it)."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    key = params.get("k", "")
    if path == "/noop":
        return 200, [("Content-Type", "text/plain")], b"noop"
    session = get()
    if path == "/read":
        return _json(200, _state(session))
    if path == "/set":
        session[key] = params.get("v", "")
        return _json(200, _state(session))
    if path == "/set-json":
        session[key] = json.loads(params["v"])
        return _json(200, _state(session))
    if path == "/del":
        try:
            del session[key]
        except KeyError:
            return _json(404, {"missing": key})
        return _json(200, _state(session))
    if path == "/pop":
        return _json(200, {"popped": session.pop(key, None), **_state(session)})
    if path == "/clear":
        session.clear()
        return _json(200, _state(session))
    if path == "/flush":
        session.flush()
        return _json(200, _state(session))
    if path == "/flush-then-set":
        session.flush()
        session[key] = params.get("v", "")
        return _json(200, _state(session))
    if path == "/cycle":
        before = session.session_key
        session.cycle_key()
        return _json(200, {"before": before, **_state(session)})
    if path == "/create":
        before = session.session_key
        session.create()
        return _json(200, {"before": before, **_state(session)})
    if path == "/expiry":
        session.set_expiry(_expiry_value(params["v"]))
        return _json(
            200,
            {
                "age": session.get_expiry_age(),
                "date": session.get_expiry_date().isoformat(),
                "browser_close": session.get_expire_at_browser_close(),
            },
        )
    if path == "/expiry-info":
        return _json(
            200,
            {
                "age": session.get_expiry_age(),
                "browser_close": session.get_expire_at_browser_close(),
            },
        )
    if path == "/test-cookie/set":
        session.set_test_cookie()
        return _json(200, {})
    if path == "/test-cookie/check":
        worked = session.test_cookie_worked()
        if worked:
            session.delete_test_cookie()
        return _json(200, {"worked": worked})
    if path == "/error":
        session[key or "lost"] = "never saved"
        return 500, [("Content-Type", "text/plain")], b"app error"
    if path == "/raise":
        session[key or "lost"] = "never saved"
        raise AppFailure("the app failed")
    if path == "/own-headers":
        session["x"] = params.get("v", "1")
        headers = [
            ("Vary", "Accept-Encoding"),
            ("Set-Cookie", "other=1; Path=/"),
            ("X-App", "kept"),
        ]
        return _json(200, _state(session), headers)
    if path == "/own-session-cookie":
        return 200, [("Set-Cookie", "sessionid=from-app; Path=/")], b"app cookie"
    if path == "/headers-read":
        session.get("anything")
        return 200, [("Vary", "Accept-Encoding")], b"read"
    return 404, [("Content-Type", "text/plain")], b"no such route"


# -- the five builders ----------------------------------------------------------------------


def build_app(kind: str, options: Options) -> Any:
    """The test app as ``kind``, wrapped in the matching middleware."""
    return _BUILDERS[kind](options)


def _starlette(options: Options) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        def session() -> Session:
            assert get_session(request) is request.session
            return get_session(request)

        status, headers, body = handle(request.url.path, request.url.query, session)
        response = Response(body, status_code=status)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    app = Starlette(routes=[Route("/{path:path}", endpoint)])
    return SessionMiddleware(app, **options)


def _fastapi(options: Options) -> Any:
    from fastapi import FastAPI, Response

    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def endpoint(path: str, request: FastAPIRequest) -> Response:
        status, headers, body = handle(
            request.url.path, request.url.query, lambda: get_session(request)
        )
        response = Response(body, status_code=status)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    return SessionMiddleware(app, **options)


def _raw_asgi(options: Options) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"

        def session() -> Session:
            found: Session = scope["session"]
            assert get_session(scope) is found
            return found

        status, headers, body = handle(scope["path"], scope["query_string"].decode(), session)
        raw = [(n.lower().encode(), v.encode()) for n, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    return SessionMiddleware(app, **options)


def _flask(options: Options) -> Any:
    from flask import Flask, request
    from flask import Response as FlaskResponse

    app = Flask(__name__)

    @app.route("/<path:path>", methods=["GET", "POST"])
    def endpoint(path: str) -> FlaskResponse:
        status, headers, body = handle(
            "/" + path, request.query_string.decode(), lambda: get_session(request.environ)
        )
        response = FlaskResponse(body, status=status)
        for name, value in headers:
            response.headers.add(name, value)
        return response

    app.wsgi_app = WSGISessionMiddleware(app.wsgi_app, **options)  # type: ignore[method-assign]
    return app


def _plain_wsgi(options: Options) -> Any:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        status, headers, body = handle(
            environ["PATH_INFO"],
            environ.get("QUERY_STRING", ""),
            lambda: environ["sessionware.session"],
        )
        start_response(f"{status} X", headers)
        return [body]

    return WSGISessionMiddleware(app, **options)


_BUILDERS: dict[str, Callable[[Options], Any]] = {
    "starlette": _starlette,
    "fastapi": _fastapi,
    "raw-asgi": _raw_asgi,
    "flask": _flask,
    "plain-wsgi": _plain_wsgi,
}
