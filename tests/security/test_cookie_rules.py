"""Cookie rules of API.md §1 at middleware construction, beyond tests/test_config.py.

test_config.py covers the missing-``secure`` cases with the cookie store; here: the
``__Host-`` path and domain rules, the prefixes matched without regard to case (as
browsers do), the same rules with a server-side store, and the valid secure settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionware import SessionMiddleware, WSGISessionMiddleware
from sessionware.stores import CookieStore, MemoryStore


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("never called")


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    raise AssertionError("never called")


Build = Callable[..., object]

MIDDLEWARES = [
    pytest.param(lambda **kw: SessionMiddleware(asgi_app, **kw), id="asgi"),
    pytest.param(lambda **kw: WSGISessionMiddleware(wsgi_app, **kw), id="wsgi"),
]


@pytest.fixture(params=["cookie-store", "memory-store"])
def store_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "cookie-store":
        return {"store": CookieStore(), "secret_key": "rules-secret-0123456789abcdef0123456789"}
    return {"store": MemoryStore()}


BAD = [
    pytest.param(
        {"cookie_name": "__Host-sid", "secure": True, "path": "/app"}, "__Host-", id="host-path"
    ),
    pytest.param(
        {"cookie_name": "__Host-sid", "secure": True, "domain": "example.test"},
        "__Host-",
        id="host-domain",
    ),
    pytest.param({"cookie_name": "__Host-sid", "path": "/app"}, "__Host-", id="host-insecure-path"),
    # Browsers match the prefixes case-insensitively (RFC 6265bis): a lower-case
    # ``__host-`` cookie without Secure is dropped by them just the same.
    pytest.param({"cookie_name": "__host-sid"}, "(?i)__host-", id="host-lower-case"),
    pytest.param(
        {"cookie_name": "__HOST-sid", "secure": True, "domain": "example.test"},
        "(?i)__host-",
        id="host-upper-case-domain",
    ),
    pytest.param({"cookie_name": "__secure-sid"}, "(?i)__secure-", id="secure-lower-case"),
    pytest.param({"cookie_name": "__SECURE-sid"}, "(?i)__secure-", id="secure-upper-case"),
    pytest.param({"samesite": "none"}, "secure", id="samesite-none"),
    pytest.param({"partitioned": True}, "secure", id="partitioned"),
    pytest.param({"samesite": "none", "partitioned": True}, "secure", id="both"),
]


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize(("options", "mentions"), BAD)
def test_cookie_rule_violations_fail_at_construction(
    build: Build, store_options: dict[str, Any], options: dict[str, Any], mentions: str
) -> None:
    with pytest.raises(ValueError, match=mentions):
        build(**store_options, **options)


GOOD = [
    pytest.param({"cookie_name": "__Host-sid", "secure": True}, id="host"),
    pytest.param(
        {"cookie_name": "__Secure-sid", "secure": True, "domain": "example.test", "path": "/a"},
        id="secure",
    ),
    pytest.param({"secure": True, "samesite": "none"}, id="samesite-none"),
    pytest.param({"secure": True, "samesite": "none", "partitioned": True}, id="partitioned"),
    pytest.param({"secure": True, "samesite": "strict"}, id="strict"),
    pytest.param({"samesite": None}, id="no-samesite"),
]


@pytest.mark.parametrize("build", MIDDLEWARES)
@pytest.mark.parametrize("options", GOOD)
def test_valid_secure_settings_are_accepted(
    build: Build, store_options: dict[str, Any], options: dict[str, Any]
) -> None:
    assert build(**store_options, **options) is not None
