"""FastAPI with sessions in memory, and a dependency that reads the logged-in user.

Run:  uvicorn examples.fastapi_app:app
For several processes or hosts, swap MemoryStore for RedisStore("redis://…") or SQLStore.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

from sessionware import Session, SessionMiddleware, get_session
from sessionware.stores import MemoryStore

app = FastAPI()
app.add_middleware(SessionMiddleware, store=MemoryStore())


async def session_of(request: Request) -> Session:
    """The request's session, typed: FastAPI and mypy both see a ``Session``."""
    return get_session(request)


SessionDep = Annotated[Session, Depends(session_of)]


async def current_user(session: SessionDep) -> str:
    """The logged-in user's name; 401 for everyone else."""
    username = session.get("username")
    if username is None:
        raise HTTPException(status_code=401, detail="log in first")
    return str(username)


class Login(BaseModel):
    username: str


@app.post("/login")
async def login(body: Login, session: SessionDep) -> dict[str, str]:
    session.cycle_key()  # new key at login (session fixation)
    session["username"] = body.username
    return {"username": body.username}


@app.get("/me")
async def me(user: Annotated[str, Depends(current_user)], request: Request) -> dict[str, object]:
    # request.session works as with Starlette's own middleware.
    request.session["seen"] = request.session.get("seen", 0) + 1
    return {"username": user, "seen": request.session["seen"]}


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, bool]:
    session.flush()
    return {"logged_out": True}
