"""A bare ASGI callable, no framework: the session is ``scope["session"]``.

Run:  uvicorn examples.raw_asgi:app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sessionware import SessionMiddleware
from sessionware.stores import MemoryStore

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def counter(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to set up
    session = scope["session"]
    if scope["path"] == "/reset":
        session.flush()
        body = b"reset\n"
    else:
        session["count"] = session.get("count", 0) + 1
        body = f"count: {session['count']}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})


app = SessionMiddleware(counter, store=MemoryStore())
