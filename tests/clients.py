"""A synchronous cookie-keeping client for any test app, ASGI or WSGI.

ASGI apps are called through httpx's ``ASGITransport`` on an event loop in a portal
thread, WSGI apps through ``WSGITransport``, so one test body drives both middlewares.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anyio.from_thread
import httpx

BASE_URL = "http://testserver"


class Client:
    """``get``/``post`` returning ``httpx.Response``; cookies persist like a browser's."""

    def __init__(self, app: Any, asgi: bool, stack: ExitStack) -> None:
        self._asgi = asgi
        if asgi:
            self._portal = stack.enter_context(anyio.from_thread.start_blocking_portal())
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            self._async = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
            stack.callback(self._portal.call, self._async.aclose)
            self.cookies = self._async.cookies
        else:
            self._sync = httpx.Client(transport=ServerLikeWSGITransport(app), base_url=BASE_URL)
            stack.callback(self._sync.close)
            self.cookies = self._sync.cookies

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self._asgi:
            return self._portal.call(lambda: self._async.request(method, path, **kwargs))
        return self._sync.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    @property
    def session_cookie(self) -> str | None:
        return self.cookies.get("sessionid")


@contextmanager
def client_for(app: Any, asgi: bool) -> Iterator[Client]:
    with ExitStack() as stack:
        yield Client(app, asgi, stack)


class ServerLikeWSGITransport(httpx.BaseTransport):
    """Calls a WSGI app the way a real server does (PEP 3333): headers decoded as latin-1,
    and an exception escaping the app becomes a 500 response instead of a test crash."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.url.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.url.path,
            "QUERY_STRING": request.url.query.decode("ascii"),
            "SERVER_NAME": request.url.host,
            "SERVER_PORT": str(request.url.port or 80),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
        }
        for raw_name, raw_value in request.headers.raw:
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                name = "HTTP_" + name
            value = raw_value.decode("latin-1")
            environ[name] = (
                f"{environ[name]}; {value}" if name == "HTTP_COOKIE" and name in environ else value
            )
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        try:
            result = self.app(environ, start_response)
            try:
                content = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:  # what a server does with an escaping exception
            return httpx.Response(500, content=b"Internal Server Error")
        status, headers = started
        return httpx.Response(int(status[:3]), headers=headers, content=content)
