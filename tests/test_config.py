"""Every configuration mistake is a ValueError at construction, under both middlewares."""

from __future__ import annotations

from typing import Any

import pytest

from sessionware import SessionMiddleware, WSGISessionMiddleware
from sessionware._records import Record
from sessionware.stores import CookieStore, SessionStore


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    raise AssertionError("never called")


MIDDLEWARES = [
    pytest.param(lambda **kw: SessionMiddleware(asgi_app, **kw), id="asgi"),
    pytest.param(lambda **kw: WSGISessionMiddleware(wsgi_app, **kw), id="wsgi"),
]

BAD = [
    ({}, "store"),
    ({"store": CookieStore()}, "secret_key"),
    ({"secret_key": []}, "secret_key"),
    ({"secret_key": [""]}, "secret_key"),
    ({"secret_key": "s", "samesite": "none"}, "secure"),
    ({"secret_key": "s", "partitioned": True}, "secure"),
    ({"secret_key": "s", "cookie_name": "__Host-s"}, "__Host-"),
    ({"secret_key": "s", "cookie_name": "__Secure-s"}, "__Secure-"),
    ({"secret_key": "s", "max_age": 0}, "max_age"),
    ({"secret_key": "s", "max_age": "10"}, "max_age"),
    ({"secret_key": "s", "absolute_max_age": -5}, "absolute_max_age"),
    ({"secret_key": "s", "store": object()}, "store"),
    ({"secret_key": "s", "serializer": object()}, "serializer"),
    ({"secret_key": "s", "exclude_paths": "/static"}, "exclude_paths"),
    ({"secret_key": "s", "exclude_paths": ["static"]}, "exclude_paths"),
]


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize(("options", "mentions"), BAD)
def test_configuration_mistakes_fail_at_construction(
    build: Any, options: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(ValueError, match=mentions):
        build(**options)


@pytest.mark.parametrize("build", MIDDLEWARES)
def test_secret_key_alone_means_a_cookie_store(build: Any) -> None:
    middleware = build(secret_key=["new", b"old"])
    assert middleware.settings.store is None
    assert middleware.settings.codec is not None


class AsyncOnlyStore(SessionStore):
    supports_sync = False

    async def aload(self, key: str, now: float) -> Record | None:
        return None


def test_wsgi_refuses_an_async_only_store() -> None:
    with pytest.raises(ValueError, match="only async"):
        WSGISessionMiddleware(wsgi_app, store=AsyncOnlyStore())
    SessionMiddleware(asgi_app, store=AsyncOnlyStore())  # fine under ASGI
