"""Flask with sessionware as WSGI middleware, sessions kept as files.

Run:  flask --app examples.flask_app run
Flask's own ``flask.session`` is a signed cookie; this one is server-side and has
Django's API (``flush()``, ``cycle_key()``, ``set_expiry()``).
"""

from __future__ import annotations

from flask import Flask, redirect, request
from werkzeug.wrappers import Response

from sessionware import WSGISessionMiddleware, get_session
from sessionware.stores import FileStore

app = Flask(__name__)
# The directory is created at the first write.
app.wsgi_app = WSGISessionMiddleware(app.wsgi_app, store=FileStore("flask-sessions"))  # type: ignore[method-assign]


@app.get("/")
def index() -> dict[str, object]:
    session = get_session(request.environ)
    session["visits"] = session.get("visits", 0) + 1
    return {"user": session.get("username"), "visits": session["visits"]}


@app.post("/login")
def login() -> Response:
    session = get_session(request.environ)
    session.cycle_key()
    session["username"] = request.form["username"]
    return redirect("/", code=303)


@app.post("/logout")
def logout() -> Response:
    get_session(request.environ).flush()
    return redirect("/", code=303)
