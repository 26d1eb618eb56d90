"""The cookie jars of test clients: which ``Cookie`` header the client would send, and
how a ``Set-Cookie`` lands in its jar, as if the app had answered a request.

Two families cover the clients the helpers accept: httpx's (``httpx.Client``,
``httpx.AsyncClient``, Starlette's ``TestClient``), whose ``cookies`` is an
``httpx.Cookies``, and Werkzeug's test ``Client`` (Flask's ``FlaskClient`` included).
Each jar applies its own domain, path and expiry rules, so a cookie the helpers put in
is sent exactly when the app's own cookie would be.
"""

from __future__ import annotations

import http.cookiejar
import sys
import urllib.request
from typing import Any, Protocol
from urllib.parse import urlsplit


class Jar(Protocol):
    def cookie_headers(self) -> list[str]:
        """The ``Cookie`` header values a request to the session's path would carry."""
        ...

    def receive(self, set_cookie: str) -> None:
        """Store a ``Set-Cookie`` value as if a response to that request carried it."""
        ...


def jar_for(client: Any, cookie_path: str, url: str | None) -> Jar:
    """The jar of ``client``; ``url`` is where it sends requests, if it has no base URL."""
    if hasattr(client, "_add_cookies_to_wsgi") and hasattr(client, "_update_cookies_from_response"):
        return _WerkzeugJar(client, cookie_path, url)
    cookies = getattr(client, "cookies", None)
    if hasattr(cookies, "set_cookie_header") and hasattr(cookies, "extract_cookies"):
        return _HttpxJar(client, cookie_path, url)
    raise TypeError(
        f"{type(client).__name__} is not a client these helpers know: use an httpx.Client "
        "or httpx.AsyncClient, Starlette's TestClient, or a Flask or Werkzeug test client"
    )


class _HttpxJar:
    """``client.cookies`` of an httpx client, driven through its own request/response API.

    The classes come from the client's own package: Starlette's ``TestClient`` is built
    on ``httpx2``, a fork whose objects do not mix with httpx's.
    """

    def __init__(self, client: Any, cookie_path: str, url: str | None) -> None:
        self._cookies = client.cookies
        package = sys.modules[type(self._cookies).__module__.partition(".")[0]]
        self._package: Any = package
        base = package.URL(url) if url is not None else client.base_url
        if not base.host:
            raise ValueError(
                "this client has no base_url, so the helpers cannot tell which host its "
                "cookie belongs to: pass url='http://host/' (where the client sends requests)"
            )
        self._url = base.copy_with(path=cookie_path, query=None)

    def cookie_headers(self) -> list[str]:
        probe = self._package.Request("GET", self._url)
        self._cookies.set_cookie_header(probe)
        header = probe.headers.get("Cookie")
        return [header] if header else []

    def receive(self, set_cookie: str) -> None:
        # A cookie of the same name that this URL would also be sent (one put in with
        # ``client.cookies.set(name, value)`` has no domain, so the response's cookie
        # lands beside it rather than on it) is replaced: a browser sends one cookie.
        name = set_cookie.partition("=")[0].strip()
        here = urllib.request.Request(str(self._url))
        policy = http.cookiejar.DefaultCookiePolicy()
        jar = self._cookies.jar
        for cookie in list(jar):
            if (
                cookie.name == name
                and policy.return_ok_domain(cookie, here)
                and policy.path_return_ok(cookie.path, here)
            ):
                jar.clear(cookie.domain, cookie.path, cookie.name)
        request = self._package.Request("GET", self._url)
        response = self._package.Response(
            200, headers=[("Set-Cookie", set_cookie)], request=request
        )
        self._cookies.extract_cookies(response)


class _WerkzeugJar:
    """A Werkzeug (or Flask) test client's jar, through the two hooks that Flask's own
    ``session_transaction`` uses."""

    def __init__(self, client: Any, cookie_path: str, url: str | None) -> None:
        self._client = client
        self._environ = _environ(client, cookie_path, url)
        parts = urlsplit(_current_url(self._environ))
        self._host = parts.hostname or "localhost"
        self._path = parts.path or "/"

    def cookie_headers(self) -> list[str]:
        environ = dict(self._environ)
        self._client._add_cookies_to_wsgi(environ)
        header = environ.get("HTTP_COOKIE")
        return [header] if header else []

    def receive(self, set_cookie: str) -> None:
        self._client._update_cookies_from_response(self._host, self._path, [set_cookie])


def _environ(client: Any, cookie_path: str, url: str | None) -> dict[str, Any]:
    """A request environ for ``cookie_path`` on the client's host."""
    from werkzeug.test import EnvironBuilder

    application = getattr(client, "application", None)
    if url is None and application is not None and hasattr(application, "test_request_context"):
        # A Flask client: its host and scheme come from SERVER_NAME and
        # PREFERRED_URL_SCHEME, as for the client's own requests.
        from flask.testing import EnvironBuilder as FlaskBuilder

        url = _origin(_built(FlaskBuilder(application, path="/")))
    return _built(EnvironBuilder(path=cookie_path, base_url=url))


def _built(builder: Any) -> dict[str, Any]:
    try:
        return dict(builder.get_environ())
    finally:
        builder.close()


def _origin(environ: dict[str, Any]) -> str:
    from werkzeug.wsgi import get_host

    return f"{environ['wsgi.url_scheme']}://{get_host(environ)}"


def _current_url(environ: dict[str, Any]) -> str:
    from werkzeug.wsgi import get_current_url

    return get_current_url(environ)
