"""Flask with sessionware as plain WSGI middleware, sessions kept as files in
``./flask-sessions`` (ignored by git).

Run:  flask --app examples.flask_app run
The session is ``get_session(request.environ)``, as under any WSGI app. To have it as
``flask.session`` instead (Flask-Login, Flask-WTF), use ``sessionware.flask.init_app``:
see ``flask_login_app.py``.
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
