"""Websocket scopes get the session, changes persist when the socket closes; lifespan passes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message
from starlette.websockets import WebSocket

from sessionware import SessionMiddleware, get_session
from sessionware.stores import MemoryStore

pytestmark = pytest.mark.anyio


async def login(request: Request) -> JSONResponse:
    request.session["user"] = "ada"
    return JSONResponse({})


async def read(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    session = get_session(websocket)
    await websocket.send_json({"user": session.get("user")})
    text = await websocket.receive_text()
    try:
        if text == "cycle":
            session.cycle_key()
        elif text == "flush":
            session.flush()
        else:
            session["last_message"] = text
    except RuntimeError as exc:
        await websocket.send_json({"refused": str(exc)})
    await websocket.close()


def make_app(store: MemoryStore) -> SessionMiddleware:
    routes = [Route("/login", login), Route("/read", read), WebSocketRoute("/ws", chat)]
    return SessionMiddleware(Starlette(routes=routes), store=store)


async def talk(app: ASGIApp, cookie: str | None, texts: list[str]) -> list[Message]:
    """Open a websocket to ``/ws``, send ``texts`` after the handshake, collect what is sent."""
    incoming: list[Message] = [{"type": "websocket.connect"}]
    incoming += [{"type": "websocket.receive", "text": text} for text in texts]
    incoming.append({"type": "websocket.disconnect", "code": 1000})
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    headers = [] if cookie is None else [(b"cookie", f"sessionid={cookie}".encode())]
    scope: dict[str, Any] = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "headers": headers,
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "subprotocols": [],
        "asgi": {"version": "3.0"},
    }
    await app(scope, receive, send)
    return sent


async def test_websocket_sees_the_session_and_its_changes_persist() -> None:
    app = make_app(MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/login")
        sent = await talk(app, client.cookies["sessionid"], ["hello"])
        assert [m["type"] for m in sent] == [
            "websocket.accept",
            "websocket.send",
            "websocket.close",
        ]
        assert sent[1]["text"] == '{"user":"ada"}'
        assert (await client.get("/read")).json() == {"user": "ada", "last_message": "hello"}


async def test_a_websocket_cannot_start_a_session_it_could_not_send() -> None:
    store = MemoryStore()
    sent = await talk(make_app(store), None, ["hello"])
    assert sent[1]["text"] == '{"user":null}'
    assert "a websocket cannot send a cookie" in sent[2]["text"]
    assert store.clear_expired(now=float("inf")) == 0  # nothing was ever stored


async def test_cycle_key_in_a_websocket_is_refused_and_the_login_survives() -> None:
    app = make_app(MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/login")
        sent = await talk(app, client.cookies["sessionid"], ["cycle"])
        assert "cycle_key()/create()" in sent[2]["text"]
        assert (await client.get("/read")).json() == {"user": "ada"}


async def test_flush_in_a_websocket_logs_out_at_once() -> None:
    app = make_app(MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.get("/login")
        cookie = client.cookies["sessionid"]
        sent = await talk(app, cookie, ["flush"])
        assert [m["type"] for m in sent][-1] == "websocket.close"
        response = await client.get("/read")
        assert response.json() == {}  # the old key is stale: an empty session
        assert response.headers.get("set-cookie") is None


async def test_lifespan_passes_through_untouched() -> None:
    seen: list[dict[str, Any]] = []

    async def lifespan_app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope))
        await receive()
        await send({"type": "lifespan.startup.complete"})

    app = SessionMiddleware(lifespan_app, store=MemoryStore())
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]
    assert sent == [{"type": "lifespan.startup.complete"}]
