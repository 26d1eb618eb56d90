"""Every configuration mistake fails at construction, under both middlewares (API.md §1):
a ``TypeError`` for a value of the wrong type, a ``ValueError`` for a wrong value, with a
message that names the option."""

from __future__ import annotations

import typing
import warnings
from typing import Any

import pytest

from sessionware import SessionMiddleware, WSGISessionMiddleware
from sessionware._options import DEFAULTS, Options
from sessionware.stores import CookieStore, MemoryStore, SessionStore
from sessionware.stores.base import Loaded

SECRET = "config-test-secret-0123456789abcdef0123"


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    raise AssertionError("never called")


MIDDLEWARES = [
    pytest.param(lambda **kw: SessionMiddleware(asgi_app, **kw), id="asgi"),
    pytest.param(lambda **kw: WSGISessionMiddleware(wsgi_app, **kw), id="wsgi"),
]


class TextSerializer:
    """Gives str instead of bytes: refused once, at construction."""

    def dumps(self, data: dict[str, Any]) -> str:
        return repr(data)

    def loads(self, raw: bytes) -> dict[str, Any]:
        return {}


WRONG_VALUES = [
    ({}, "store"),
    ({"store": CookieStore()}, "secret_key"),
    ({"secret_key": []}, "secret_key"),
    ({"secret_key": [""]}, "secret_key"),
    ({"secret_key": SECRET, "samesite": "none"}, "secure"),
    ({"secret_key": SECRET, "samesite": "LAX"}, "samesite"),
    ({"secret_key": SECRET, "partitioned": True}, "secure"),
    ({"secret_key": SECRET, "cookie_name": "__Host-s"}, "__Host-"),
    ({"secret_key": SECRET, "cookie_name": "__Secure-s"}, "__Secure-"),
    ({"secret_key": SECRET, "cookie_name": "sess\x00id"}, "cookie_name"),
    ({"secret_key": SECRET, "cookie_name": "sess id"}, "cookie_name"),
    ({"secret_key": SECRET, "cookie_name": ""}, "cookie_name"),
    ({"secret_key": SECRET, "max_age": 0}, "max_age"),
    ({"secret_key": SECRET, "max_age": 10**12}, "max_age"),
    ({"secret_key": SECRET, "absolute_max_age": -5}, "absolute_max_age"),
    ({"secret_key": SECRET, "path": "app"}, "path"),
    ({"secret_key": SECRET, "path": "/app\r\nSet-Cookie: x=1"}, "path"),
    ({"secret_key": SECRET, "path": "/a;b"}, "path"),
    ({"secret_key": SECRET, "domain": "example.com:8000"}, "domain"),
    ({"secret_key": SECRET, "domain": "https://example.com"}, "domain"),
    ({"secret_key": SECRET, "domain": "a.com; SameSite=None"}, "domain"),
    ({"secret_key": SECRET, "domain": "example.com/app"}, "domain"),
    ({"secret_key": SECRET, "exclude_paths": ["static"]}, "exclude_paths"),
    ({"secret_key": SECRET, "on_save_error": "ignore"}, "on_save_error"),
    ({"secret_key": SECRET, "stale_key_window": -1}, "stale_key_window"),
    ({"secret_key": SECRET, "renew_after": 0}, "renew_after"),
    ({"secret_key": SECRET, "renew_grace": -1}, "renew_grace"),
    ({"secret_key": SECRET, "user_key": ""}, "user_key"),
    ({"secret_key": SECRET, "user_key": "user_id"}, "CookieStore"),
    ({"store": MemoryStore(), "path": "/" + "p" * 4000}, "4093"),
]

WRONG_TYPES = [
    ({"secret_key": 12345}, "secret_key"),
    ({"secret_key": [SECRET, 7]}, "secret_key"),
    ({"secret_key": SECRET, "secure": "yes"}, "secure"),
    ({"secret_key": SECRET, "httponly": "false"}, "httponly"),
    ({"secret_key": SECRET, "partitioned": 1}, "partitioned"),
    ({"secret_key": SECRET, "save_every_request": "no"}, "save_every_request"),
    ({"secret_key": SECRET, "expire_at_browser_close": 0}, "expire_at_browser_close"),
    ({"secret_key": SECRET, "autoload": "false"}, "autoload"),
    ({"secret_key": SECRET, "max_age": "10"}, "max_age"),
    ({"secret_key": SECRET, "max_age": 10.5}, "max_age"),
    ({"secret_key": SECRET, "cookie_name": 5}, "cookie_name"),
    ({"secret_key": SECRET, "path": b"/"}, "path"),
    ({"secret_key": SECRET, "domain": 5}, "domain"),
    ({"secret_key": SECRET, "store": object()}, "store"),
    ({"secret_key": SECRET, "serializer": object()}, "serializer"),
    ({"secret_key": SECRET, "serializer": TextSerializer()}, "bytes"),
    ({"secret_key": SECRET, "exclude_paths": "/static"}, "exclude_paths"),
    ({"secret_key": SECRET, "exclude_paths": [b"/static"]}, "exclude_paths"),
    ({"secret_key": SECRET, "error_app": "render_outage"}, "error_app"),
    ({"secret_key": SECRET, "user_key": 5}, "user_key"),
    ({"secret_key": SECRET, "stale_key_window": "60"}, "stale_key_window"),
    ({"secret_key": SECRET, "renew_after": True}, "renew_after"),
]


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize(("options", "mentions"), WRONG_VALUES)
def test_wrong_values_are_value_errors_at_construction(
    build: Any, options: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(ValueError, match=mentions):
        build(**options)


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize(("options", "mentions"), WRONG_TYPES)
def test_wrong_types_are_type_errors_at_construction(
    build: Any, options: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(TypeError, match=mentions):
        build(**options)


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize(
    ("starlette", "ours"),
    [("https_only", "secure"), ("same_site", "samesite"), ("session_cookie", "cookie_name")],
)
def test_starlette_option_names_point_to_ours(build: Any, starlette: str, ours: str) -> None:
    with pytest.raises(TypeError, match=rf"'{starlette}' \(sessionware calls it '{ours}'\)"):
        build(secret_key=SECRET, **{starlette: True})


@pytest.mark.parametrize("build", MIDDLEWARES)
def test_an_unknown_option_is_named_not_an_internal_function(build: Any) -> None:
    with pytest.raises(TypeError, match="unknown session option 'cookie_nmae'") as raised:
        build(secret_key=SECRET, cookie_nmae="sid")
    assert "build_settings" not in str(raised.value)


@pytest.mark.parametrize("build", MIDDLEWARES)
def test_a_short_secret_is_accepted_with_a_warning(build: Any) -> None:
    with pytest.warns(UserWarning, match="secret_key is 1 bytes"):
        build(secret_key="s")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build(secret_key=SECRET)


@pytest.mark.parametrize("build", MIDDLEWARES)
def test_secret_key_alone_means_a_cookie_store(build: Any) -> None:
    middleware = build(secret_key=[SECRET, SECRET.encode() + b"-old"])
    assert isinstance(middleware.settings.store, CookieStore)
    assert middleware.settings.format.carries_payload


@pytest.mark.parametrize("build", MIDDLEWARES)
def test_valid_settings_are_accepted(build: Any) -> None:
    build(
        store=MemoryStore(),
        secret_key=SECRET,
        cookie_name="__Host-sid",
        secure=True,
        samesite="none",
        partitioned=True,
        domain=None,
        max_age=None,
        absolute_max_age=86400,
        exclude_paths=("/static", "/healthz"),
        stale_key_window=0,
        renew_after=3600,
        renew_grace=10.5,
        on_save_error="keep",
        error_app=asgi_app,
        user_key="user_id",
        autoload=False,
    )
    build(store=MemoryStore(), domain="example.com", path="/app", samesite=None)


def test_the_typed_options_and_the_defaults_name_the_same_options() -> None:
    assert list(typing.get_type_hints(Options)) == list(DEFAULTS)


class AsyncOnlyStore(SessionStore):
    supports_sync = False

    async def aload(self, key: str, now: float) -> Loaded:
        return None


def test_wsgi_refuses_an_async_only_store() -> None:
    with pytest.raises(ValueError, match="only async"):
        WSGISessionMiddleware(wsgi_app, store=AsyncOnlyStore())
    SessionMiddleware(asgi_app, store=AsyncOnlyStore())  # fine under ASGI
