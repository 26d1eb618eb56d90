"""The ASGI apps under test: one Starlette app, three routes, wrapped by each middleware.

Every app is the same ``Starlette`` application with its session middleware passed in
``middleware=`` (how users install all of them), so the difference to ``bare`` is the
middleware and its store alone. Routes:

- ``/noop`` never touches the session;
- ``/read`` reads one key;
- ``/write`` changes one key (the first write stores a small, realistic profile).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from .config import MEMCACHED_URL, MYSQL_URL, POSTGRES_URL, REDIS_URL, SECRET, Run

# What a logged-in user's session typically holds; stored by the first /write.
PROFILE: dict[str, Any] = {
    "user_id": 4242,
    "username": "ada",
    "csrf": "9f86d081884c7d659a2feaa0c55ad015",
    "cart": [17, 23, 42],
    "n": 0,
}

ROUTES = ("/noop", "/read", "/write")

# name -> the cookie the middleware uses (None: the bare app has none)
ASGI_APPS: dict[str, str | None] = {
    "bare": None,
    "starlette": "session",
    "starsessions-cookie": "session",
    "starsessions-memory": "session",
    "starsessions-redis": "session",
    "sessionware-cookie": "sessionid",
    "sessionware-memory": "sessionid",
    "sessionware-file": "sessionid",
    "sessionware-sqlite": "sessionid",
    "sessionware-redis": "sessionid",
    "sessionware-postgres": "sessionid",
    "sessionware-mysql": "sessionid",
    "sessionware-memcached": "sessionid",
    # ASGI explicit mode (autoload=False): measured on /noop only, where no store call
    # may happen even though the request carries a session cookie.
    "sessionware-cookie-explicit": "sessionid",
    "sessionware-memory-explicit": "sessionid",
    "sessionware-file-explicit": "sessionid",
    "sessionware-sqlite-explicit": "sessionid",
    "sessionware-redis-explicit": "sessionid",
    "sessionware-postgres-explicit": "sessionid",
    "sessionware-mysql-explicit": "sessionid",
    "sessionware-memcached-explicit": "sessionid",
}
EXPLICIT = "-explicit"

# The apps whose store is Redis, and the key prefix each uses (for command counting).
REDIS_APPS = ("starsessions-redis", "sessionware-redis")


def touch_session(session: MutableMapping[str, Any], write: bool) -> str:
    """What /read and /write do to a session, shared by the ASGI and WSGI apps."""
    if write:
        if "user_id" not in session:
            session.update(PROFILE)
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])
    return str(session.get("user_id"))


async def _noop(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def _read(request: Request) -> PlainTextResponse:
    return PlainTextResponse(touch_session(request.session, write=False))


async def _write(request: Request) -> PlainTextResponse:
    return PlainTextResponse(touch_session(request.session, write=True))


async def _explicit_read(request: Request) -> PlainTextResponse:
    from sessionware import load_session

    return PlainTextResponse(touch_session(await load_session(request), write=False))


async def _explicit_write(request: Request) -> PlainTextResponse:
    from sessionware import load_session

    return PlainTextResponse(touch_session(await load_session(request), write=True))


async def _bare_read(request: Request) -> PlainTextResponse:
    return PlainTextResponse("4242")


async def _bare_write(request: Request) -> PlainTextResponse:
    return PlainTextResponse("1")


@dataclass
class BuiltApp:
    """An app ready to serve, and what to call to release its connections."""

    name: str
    app: ASGIApp
    cookie_name: str | None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        for close in self.closers:
            await close()


def starlette_app(middleware: list[Middleware] | None, explicit: bool = False) -> Starlette:
    """The bench's app: ``None`` builds the bare app (no session), else the routes that
    use the session the middleware gives (``explicit``: loaded with ``load_session``)."""
    if middleware is None:
        routes = [Route("/noop", _noop), Route("/read", _bare_read), Route("/write", _bare_write)]
    elif explicit:
        routes = [
            Route("/noop", _noop),
            Route("/read", _explicit_read),
            Route("/write", _explicit_write),
        ]
    else:
        routes = [Route("/noop", _noop), Route("/read", _read), Route("/write", _write)]
    return Starlette(routes=routes, middleware=middleware or [])


def build_asgi(name: str, run: Run) -> BuiltApp:
    """The app called ``name`` (a key of ``ASGI_APPS``), with stores named after ``run``."""
    cookie = ASGI_APPS[name]
    if name == "bare":
        return BuiltApp(name, starlette_app(None), cookie)
    if name == "starlette":
        from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

        return BuiltApp(
            name, starlette_app([Middleware(StarletteSessions, secret_key=SECRET)]), cookie
        )
    if name.startswith("starsessions-"):
        return _starsessions(name, run)
    return _sessionware(name, run)


def _starsessions(name: str, run: Run) -> BuiltApp:
    import starsessions
    from starsessions.stores.redis import RedisStore as StarRedisStore

    closers: list[Callable[[], Awaitable[None]]] = []
    kind = name.removeprefix("starsessions-")
    store: Any
    if kind == "cookie":
        store = starsessions.CookieStore(secret_key=SECRET)
    elif kind == "memory":
        store = starsessions.InMemoryStore()
    else:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(REDIS_URL)
        store = StarRedisStore(connection=client, prefix=run.redis_prefix(name))
        closers.append(client.aclose)
    middleware = [
        Middleware(starsessions.SessionMiddleware, store=store, cookie_https_only=False),
        Middleware(starsessions.SessionAutoloadMiddleware),
    ]
    return BuiltApp(name, starlette_app(middleware), ASGI_APPS[name], closers)


def _sessionware(name: str, run: Run) -> BuiltApp:
    from sessionware import SessionMiddleware
    from sessionware.stores import (
        CookieStore,
        FileStore,
        MemcachedStore,
        MemoryStore,
        RedisStore,
        SQLStore,
    )

    explicit = name.endswith(EXPLICIT)
    kind = name.removeprefix("sessionware-").removesuffix(EXPLICIT)
    options: dict[str, Any] = {"autoload": False} if explicit else {}
    store: Any
    if kind == "cookie":
        store, options["secret_key"] = CookieStore(), SECRET
    elif kind == "memory":
        store = MemoryStore()
    elif kind == "file":
        store = FileStore(run.path(f"{name}-files"))
    elif kind == "sqlite":
        store = SQLStore(f"sqlite:///{run.path(f'{name}.db')}", table=run.sql_table(name))
    elif kind == "postgres":
        store = SQLStore(POSTGRES_URL, table=run.sql_table(name))
    elif kind == "mysql":
        store = SQLStore(MYSQL_URL, table=run.sql_table(name))
    elif kind == "redis":
        store = RedisStore(REDIS_URL, prefix=run.redis_prefix(name))
    elif kind == "memcached":
        store = MemcachedStore(MEMCACHED_URL, prefix=run.redis_prefix(name))
    else:
        raise ValueError(f"unknown app {name!r}")
    middleware = [Middleware(SessionMiddleware, store=store, **options)]
    closers = [store.aclose]
    if kind == "memcached":  # its items would outlive the run (the bench removes the rest)
        closers.insert(0, _closer(store.delete_all))
    return BuiltApp(name, starlette_app(middleware, explicit), ASGI_APPS[name], closers)


def _closer(close: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def closing() -> None:
        close()

    return closing
