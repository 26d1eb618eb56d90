"""The WSGI apps under test: one Flask app, the same three routes, each session flavour.

- ``flask-bare``: no session use at all (the limit);
- ``flask-cookie``: Flask's own signed-cookie session (in-process table only);
- ``flask-session-redis``: Flask-Session's Redis interface, with its defaults;
- ``sessionware-wsgi-cookie``: ``WSGISessionMiddleware`` with the cookie store (in-process);
- ``sessionware-wsgi-redis``: ``WSGISessionMiddleware`` with ``RedisStore``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import flask

from .apps import touch_session
from .config import REDIS_URL, SECRET, Run
from .inprocess import WSGIApp

WSGI_APPS: dict[str, str | None] = {
    "flask-bare": None,
    "flask-cookie": "session",
    "flask-session-redis": "session",
    "sessionware-wsgi-cookie": "sessionid",
    "sessionware-wsgi-redis": "sessionid",
}
WSGI_HTTP_APPS = ("flask-bare", "flask-session-redis", "sessionware-wsgi-redis")
WSGI_REDIS_APPS = ("flask-session-redis", "sessionware-wsgi-redis")


@dataclass
class BuiltWsgi:
    name: str
    app: WSGIApp
    cookie_name: str | None
    closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        for close in self.closers:
            close()


def _flask(session_of: Callable[[], MutableMapping[str, Any]] | None) -> flask.Flask:
    app = flask.Flask("swbench")

    @app.get("/noop")
    def noop() -> str:
        return "ok"

    @app.get("/read")
    def read() -> str:
        return "4242" if session_of is None else touch_session(session_of(), write=False)

    @app.get("/write")
    def write() -> str:
        return "1" if session_of is None else touch_session(session_of(), write=True)

    return app


def _flask_session() -> MutableMapping[str, Any]:
    return flask.session


def _sessionware_session() -> MutableMapping[str, Any]:
    from sessionware import get_session

    return get_session(flask.request.environ)


def build_wsgi(name: str, run: Run) -> BuiltWsgi:
    cookie = WSGI_APPS[name]
    if name == "flask-bare":
        return BuiltWsgi(name, _flask(None).wsgi_app, cookie)
    if name == "flask-cookie":
        app = _flask(_flask_session)
        app.secret_key = SECRET
        return BuiltWsgi(name, app.wsgi_app, cookie)
    if name == "flask-session-redis":
        import redis
        from flask_session import Session

        client = redis.Redis.from_url(REDIS_URL)
        app = _flask(_flask_session)
        app.config.update(
            SESSION_TYPE="redis", SESSION_REDIS=client, SESSION_KEY_PREFIX=run.redis_prefix(name)
        )
        Session(app)
        return BuiltWsgi(name, app.wsgi_app, cookie, [client.close])
    from sessionware import WSGISessionMiddleware
    from sessionware.stores import CookieStore, RedisStore

    inner = _flask(_sessionware_session).wsgi_app
    if name == "sessionware-wsgi-cookie":
        wrapped = WSGISessionMiddleware(inner, store=CookieStore(), secret_key=SECRET)
        return BuiltWsgi(name, wrapped, cookie)
    if name == "sessionware-wsgi-redis":
        store = RedisStore(REDIS_URL, prefix=run.redis_prefix(name))
        return BuiltWsgi(name, WSGISessionMiddleware(inner, store=store), cookie, [store.close])
    raise ValueError(f"unknown WSGI app {name!r}")
