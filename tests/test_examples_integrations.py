"""The Flask-Login example (sessions in PostgreSQL) and the FastAPI example, whose tests
log a user in with ``edit_session`` instead of going through the login form; and the
typed FastAPI dependency the README shows."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from sessionware import Session, SessionMiddleware, get_session
from sessionware.stores import MemoryStore
from sessionware.stores.base import SessionStore
from sessionware.testing import aedit_session, edit_session, read_session
from tests.stores.factories import make_store

# SQLStore is being moved to the new store contract: the PostgreSQL row runs once it is
# (remove the mark); the example's default store is PostgreSQL.


def fresh(name: str) -> ModuleType:
    sys.modules.pop(f"examples.{name}", None)
    return importlib.import_module(f"examples.{name}")


# -- Flask + Flask-Login -----------------------------------------------------------------------


@pytest.fixture(params=["postgres", "memory"])
def session_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    with make_store(request.param, tmp_path) as store:
        yield store


def test_flask_login_example_logs_in_lists_devices_and_logs_out(
    session_store: SessionStore,
) -> None:
    app = fresh("flask_login_app").create_app(session_store)
    browser, phone = app.test_client(), app.test_client()
    assert browser.get("/").json == {"user": None}
    wrong = browser.post("/login", data={"username": "ada", "password": "babbage"})
    assert wrong.status_code == 401
    for client in (browser, phone):
        login = client.post("/login", data={"username": "ada", "password": "lovelace"})
        assert login.status_code == 303
    assert browser.get("/").json == {"user": "ada"}
    devices = browser.get("/devices").json
    assert devices is not None
    assert len(devices["sessions"]) == 2  # the browser and the phone
    assert devices["this"] in devices["sessions"]
    browser.post("/logout")
    assert browser.get("/").json == {"user": None}
    assert browser.get("/devices").status_code == 401
    remaining = phone.get("/devices").json
    assert remaining is not None
    assert remaining["sessions"] == [remaining["this"]]  # the phone is still signed in


def test_flask_login_example_test_can_log_in_with_edit_session(
    session_store: SessionStore,
) -> None:
    app = fresh("flask_login_app").create_app(session_store)
    client = app.test_client()
    with edit_session(client, app) as session:
        session["_user_id"] = "alan"  # what Flask-Login's login_user stores
    assert client.get("/").json == {"user": "alan"}
    assert read_session(client, app)["_user_id"] == "alan"


def test_flask_login_example_defaults_to_the_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONWARE_DATABASE_URL", "postgresql://someone@db.internal/app")
    module = fresh("flask_login_app")
    assert module.DATABASE_URL == "postgresql://someone@db.internal/app"
    monkeypatch.delenv("SESSIONWARE_DATABASE_URL")
    assert fresh("flask_login_app").DATABASE_URL == "postgresql://postgres@127.0.0.1:5432/test"


# -- FastAPI: a test logs in with edit_session ---------------------------------------------------


def test_fastapi_example_logged_in_by_edit_session() -> None:
    module = fresh("fastapi_app")
    with TestClient(module.app) as client:
        assert client.get("/me").status_code == 401
        with edit_session(client, module.app) as session:
            session["username"] = "ada"
        assert client.get("/me").json() == {"username": "ada", "seen": 1}
        assert read_session(client, module.app) == {"username": "ada", "seen": 1}


@pytest.mark.anyio
async def test_fastapi_example_logged_in_by_aedit_session() -> None:
    module = fresh("fastapi_app")
    transport = httpx.ASGITransport(app=module.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        async with aedit_session(client, module.app) as session:
            session["username"] = "alan"
        assert (await client.get("/me")).json() == {"username": "alan", "seen": 1}


# -- the typed FastAPI dependency ----------------------------------------------------------------


async def session_of(request: Request) -> Session:
    return get_session(request)


SessionDep = Annotated[Session, Depends(session_of)]


def test_typed_dependency_gives_the_request_session() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=MemoryStore())

    @app.post("/cart/{item}")
    async def add(item: str, session: SessionDep, request: Request) -> dict[str, object]:
        assert session is request.session
        session.setdefault("cart", []).append(item)
        session.modified = True  # changed in place: save it
        return {"cart": session["cart"], "key_is_str": isinstance(session.session_key, str)}

    with TestClient(app) as client:
        client.post("/cart/apple")
        assert client.post("/cart/pear").json() == {"cart": ["apple", "pear"], "key_is_str": True}


README_DEPENDENCY = """
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from sessionware import Session, SessionMiddleware, get_session
from sessionware.stores import MemoryStore

app = FastAPI()
app.add_middleware(SessionMiddleware, store=MemoryStore())


async def session_of(request: Request) -> Session:
    return get_session(request)


SessionDep = Annotated[Session, Depends(session_of)]


@app.post("/login/{name}")
async def login(name: str, session: SessionDep) -> dict[str, str]:
    session.cycle_key()
    session["user"] = name
    key: str | None = session.session_key
    return {"user": name, "key_set": str(key is not None)}
"""


def test_typed_dependency_passes_mypy_strict(tmp_path: Path) -> None:
    source = tmp_path / "typed_dependency.py"
    source.write_text(textwrap.dedent(README_DEPENDENCY))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
