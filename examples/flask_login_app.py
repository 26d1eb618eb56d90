"""Flask + Flask-Login with ``flask.session`` kept in PostgreSQL by sessionware.

Run:  SESSIONWARE_DATABASE_URL=postgresql://user@host/db flask --app examples.flask_login_app run
(the URL defaults to the local test server). Flask-Login is used unchanged: ``login_user``
gets a new session key (no session fixation) and ``logout_user`` ends the stored session,
on every device's request at once. ``user_key="_user_id"`` (the key Flask-Login stores)
keeps an index of each user's sessions, so ``/devices`` lists them.
"""

from __future__ import annotations

import os

from flask import Flask, redirect, request
from flask.typing import ResponseReturnValue
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from werkzeug.security import check_password_hash, generate_password_hash

from sessionware import get_session
from sessionware.flask import init_app
from sessionware.stores import SQLStore
from sessionware.stores.base import SessionStore

DATABASE_URL = os.environ.get(
    "SESSIONWARE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str, password_hash: str) -> None:
        self.id = user_id
        self.password_hash = password_hash


# A real app keeps its users in a database too; two are enough here.
USERS = {
    name: User(name, generate_password_hash(password))
    for name, password in (("ada", "lovelace"), ("alan", "turing"))
}


def create_app(store: SessionStore | None = None) -> Flask:
    """The app, with sessions in ``store`` (by default a table in ``DATABASE_URL``)."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY", "change-me-" + "x" * 32)
    store = store if store is not None else SQLStore(DATABASE_URL)
    init_app(app, store=store, user_key="_user_id")
    logins = LoginManager(app)
    logins.user_loader(USERS.get)

    @app.get("/")
    def index() -> ResponseReturnValue:
        if current_user.is_authenticated:
            return {"user": current_user.id}
        return {"user": None}

    @app.post("/login")
    def login() -> ResponseReturnValue:
        user = USERS.get(request.form.get("username", ""))
        if user is None or not check_password_hash(user.password_hash, request.form["password"]):
            return {"error": "wrong username or password"}, 401
        login_user(user, remember=request.form.get("remember") == "on")
        return redirect("/", code=303)

    @app.get("/devices")
    @login_required  # type: ignore[untyped-decorator]
    def devices() -> ResponseReturnValue:
        sessions = store.user_sessions(current_user.id)  # newest first
        this = get_session(request).info_id  # typed access to the sessionware API
        return {"sessions": [info.id for info in sessions], "this": this}

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        logout_user()
        return redirect("/", code=303)

    return app
