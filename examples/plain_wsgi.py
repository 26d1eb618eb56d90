"""A bare WSGI callable: the session is ``environ["sessionware.session"]``.

Run:  waitress-serve examples.plain_wsgi:app   (or any WSGI server)
Several worker processes need a shared store: FileStore, SQLStore or RedisStore.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sessionware import WSGISessionMiddleware
from sessionware.stores import MemoryStore

StartResponse = Callable[..., Callable[[bytes], object]]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    session = environ["sessionware.session"]
    if environ["PATH_INFO"] == "/reset":
        session.flush()
        body = b"reset\n"
    else:
        session["count"] = session.get("count", 0) + 1
        body = f"count: {session['count']}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [body]


app = WSGISessionMiddleware(application, store=MemoryStore())
