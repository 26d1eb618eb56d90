"""``sessionware.flask``: ``flask.session`` driven by the same lifecycle as the middlewares,
with real Flask-Login and Flask-WTF on top, and failures answered Flask's way."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flask
import pytest
from flask import Flask, request
from flask.sessions import SessionMixin
from flask.typing import ResponseReturnValue
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_fresh,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from werkzeug.test import Client
from wtforms import StringField

from sessionware import Session, SessionSerializationError, SessionStoreError, get_session
from sessionware.flask import FlaskSession, SessionUnavailable, init_app
from sessionware.stores import CookieStore, MemoryStore
from sessionware.stores.base import Record, SessionStore, Stale
from tests.outage import SwitchableStore
from tests.stores.factories import make_store

SECRET = "flask-test-secret-" + "x" * 32


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


# -- the test app: Flask-Login and Flask-WTF as a Flask user wires them -----------------------


def make_app(store: SessionStore | None, **options: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, TESTING=True, SESSION_PROTECTION="strong")
    init_app(app, store=store, **options)
    logins = LoginManager(app)
    csrf = CSRFProtect(app)
    logins.user_loader(User)

    class NameForm(FlaskForm):  # type: ignore[misc]
        name = StringField("name")

    @app.post("/login/<user_id>")
    @csrf.exempt  # type: ignore[untyped-decorator]
    def login(user_id: str) -> ResponseReturnValue:
        login_user(User(user_id), remember=request.args.get("remember") == "1")
        return {"key": flask.session.session_key}  # type: ignore[attr-defined]

    @app.post("/logout")
    @csrf.exempt  # type: ignore[untyped-decorator]
    def logout() -> ResponseReturnValue:
        logout_user()
        return "bye"

    @app.get("/me")
    @login_required  # type: ignore[untyped-decorator]
    def me() -> ResponseReturnValue:
        return {"user": current_user.id, "fresh": login_fresh()}

    @app.get("/whoami")
    def whoami() -> ResponseReturnValue:
        authenticated = current_user.is_authenticated
        return {"user": current_user.id if authenticated else None}

    @app.get("/form")
    def form() -> ResponseReturnValue:
        return str(NameForm().csrf_token.current_token)

    @app.post("/form")
    def submit() -> ResponseReturnValue:
        form = NameForm()
        if not form.validate_on_submit():
            return {"errors": form.errors}, 400
        return {"name": form.name.data}

    @app.get("/set/<name>/<value>")
    def set_value(name: str, value: str) -> ResponseReturnValue:
        flask.session[name] = value
        return "ok"

    @app.get("/read")
    def read() -> ResponseReturnValue:
        return dict(flask.session)

    @app.get("/untouched")
    def untouched() -> ResponseReturnValue:
        return "untouched"

    return app


def cookie_key(client: Client, name: str = "session") -> str:
    cookie = client.get_cookie(name)
    assert cookie is not None
    return cookie.value.partition(".")[0]  # a key signed with SECRET_KEY: "key.signature"


def stored(store: SessionStore, key: str) -> object:
    return store.load(key, time.time())


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    memory = MemoryStore()
    yield memory
    memory.close()


# -- flask.session is a sessionware Session and a Flask SessionMixin ---------------------------


def test_flask_session_is_a_sessionware_session_and_a_session_mixin(store: MemoryStore) -> None:
    app = make_app(store)
    seen: dict[str, object] = {}

    @app.get("/kinds")
    def kinds() -> ResponseReturnValue:
        current = flask.session._get_current_object()  # type: ignore[attr-defined]
        seen.update(
            session=isinstance(current, Session),
            mixin=isinstance(current, SessionMixin),
            same=get_session(request) is current,
        )
        return ""

    app.test_client().get("/kinds")
    assert seen == {"session": True, "mixin": True, "same": True}


def bare_app(store: SessionStore, **options: Any) -> Flask:
    """Only sessions: no extension that reads the session on every request."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, TESTING=True)
    init_app(app, store=store, **options)

    @app.get("/set/<name>/<value>")
    def set_value(name: str, value: str) -> ResponseReturnValue:
        flask.session[name] = value
        return "ok"

    @app.get("/read")
    def read() -> ResponseReturnValue:
        return dict(flask.session)

    @app.get("/untouched")
    def untouched() -> ResponseReturnValue:
        return "untouched"

    return app


def test_changes_are_saved_as_deltas_and_untouched_requests_ask_nothing() -> None:
    with make_store("memory", Path()) as inner:
        store = SwitchableStore(inner)
        client = bare_app(store).test_client()
        client.get("/set/a/1")
        client.get("/set/b/2")
        assert store.calls["insert"] == 1
        assert store.calls["update"] == 1
        store.reset()
        response = client.get("/untouched")
        assert response.status_code == 200
        assert store.total == 0  # lazy: a request that never uses the session loads nothing
        assert "Vary" not in response.headers
        assert client.get("/read").json == {"a": "1", "b": "2"}


# -- Flask-Login -------------------------------------------------------------------------------


def test_flask_login_login_rotates_the_key_and_the_user_is_remembered(store: MemoryStore) -> None:
    client = make_app(store).test_client()
    client.get("/set/cart/3")
    before = cookie_key(client)
    response = client.post("/login/ada")
    assert response.json is not None
    after = cookie_key(client)
    assert after != before  # a new key at login: a planted session key gains nothing
    assert response.json["key"] == after
    assert isinstance(stored(store, before), Stale)
    assert client.get("/me").json == {"user": "ada", "fresh": True}
    data = client.get("/read").json
    assert data is not None
    assert {name: data[name] for name in ("cart", "_user_id", "_fresh")} == {
        "cart": "3",  # the data moved to the new key
        "_user_id": "ada",
        "_fresh": True,
    }
    assert isinstance(stored(store, after), Record)
    # The pre-login cookie no longer works: its key is stale, the request anonymous.
    stale = Client(client.application)
    stale.set_cookie("session", before + "." + "x")
    assert stale.get("/whoami").json == {"user": None}


def test_flask_login_logout_leaves_no_stored_session(store: MemoryStore) -> None:
    client = make_app(store).test_client()
    client.post("/login/ada")
    key = cookie_key(client)
    response = client.post("/logout")
    assert response.status_code == 200
    assert client.get_cookie("session") is None  # the cookie was deleted
    assert isinstance(stored(store, key), Stale)  # the stored session ended
    assert client.get("/me").status_code == 401
    assert client.get("/read").json == {}


def test_flask_login_remember_me_survives_the_session_and_logout_clears_it(
    store: MemoryStore,
) -> None:
    client = make_app(store).test_client()
    client.post("/login/ada?remember=1")
    assert client.get_cookie("remember_token") is not None
    client.delete_cookie("session")  # the browser closed: the session cookie is gone
    assert client.get("/me").json == {"user": "ada", "fresh": False}  # from the cookie
    client.post("/logout")
    # Flask-Login's "clear" marker survived the flush, so it deleted its own cookie too.
    assert client.get_cookie("remember_token") is None
    assert client.get("/me").status_code == 401


def test_flask_login_strong_session_protection_still_logs_out_a_stolen_cookie(
    store: MemoryStore,
) -> None:
    client = make_app(store).test_client()
    client.post("/login/ada", headers={"User-Agent": "browser A"})
    assert client.get("/me", headers={"User-Agent": "browser A"}).status_code == 200
    assert client.get("/me", headers={"User-Agent": "browser B"}).status_code == 401


# -- Flask-WTF ---------------------------------------------------------------------------------


def test_flask_wtf_csrf_token_issued_in_one_request_validates_in_the_next(
    store: MemoryStore,
) -> None:
    client = make_app(store).test_client()
    token = client.get("/form").text
    ok = client.post("/form", data={"csrf_token": token, "name": "ada"})
    assert ok.status_code == 200
    assert ok.json == {"name": "ada"}
    forged = client.post("/form", data={"csrf_token": "forged", "name": "eve"})
    assert forged.status_code == 400
    stranger = make_app(store).test_client()  # another browser: no session, no token
    assert stranger.post("/form", data={"csrf_token": token, "name": "eve"}).status_code == 400


def test_flask_wtf_token_survives_the_login_rotation(store: MemoryStore) -> None:
    client = make_app(store).test_client()
    token = client.get("/form").text
    client.post("/login/ada", data={"csrf_token": token})
    assert client.post("/form", data={"csrf_token": token, "name": "ada"}).status_code == 200


# -- configuration -----------------------------------------------------------------------------


def test_flask_config_names_set_the_cookie(store: MemoryStore) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    init_app(app, store=store)

    @app.get("/app/set")
    def set_value() -> ResponseReturnValue:
        flask.session["x"] = 1
        return ""

    header = app.test_client().get("/app/set", "https://example.com/").headers["Set-Cookie"]
    assert header.startswith("sid=")
    for attribute in ("Domain=example.com", "Path=/app", "Secure", "SameSite=Strict"):
        assert attribute in header
    assert "Partitioned" in header
    assert "HttpOnly" not in header
    assert "Max-Age" not in header  # not permanent: a browser-session cookie, as in Flask


def test_init_app_options_win_over_the_config(store: MemoryStore) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, SESSION_COOKIE_NAME="sid", SESSION_COOKIE_SAMESITE="Lax")
    init_app(app, store=store, cookie_name="mine", samesite="strict", max_age=60)

    @app.get("/")
    def index() -> ResponseReturnValue:
        flask.session["x"] = 1
        flask.session.permanent = True
        return ""

    header = app.test_client().get("/").headers["Set-Cookie"]
    assert header.startswith("mine=")
    assert "SameSite=Strict" in header
    assert "Max-Age=60;" in header


def test_flask_defaults_keep_sessionware_samesite_lax(store: MemoryStore) -> None:
    app = make_app(store)
    assert "SameSite=Lax" in app.test_client().get("/set/a/1").headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"SESSION_COOKIE_SAMESITE": "sometimes"}, ValueError),
        ({"SESSION_COOKIE_SAMESITE": "None"}, ValueError),  # None needs Secure
        ({"SESSION_COOKIE_PATH": "no-slash"}, ValueError),
        ({"SESSION_COOKIE_SECURE": "yes"}, TypeError),
        ({"PERMANENT_SESSION_LIFETIME": "a month"}, TypeError),
    ],
)
def test_config_mistakes_fail_at_init_app(config: dict[str, Any], error: type[Exception]) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, **config)
    with pytest.raises(error):
        init_app(app, store=MemoryStore())


def test_neither_store_nor_secret_key_fails_at_init_app() -> None:
    with pytest.raises(ValueError, match="secret_key"):
        init_app(Flask(__name__))


def test_secret_key_alone_keeps_sessions_in_a_signed_cookie() -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET
    interface = init_app(app)
    assert isinstance(interface.settings.store, CookieStore)


def test_secret_key_fallbacks_still_verify_old_cookies(store: MemoryStore) -> None:
    old = make_app(store)
    client = old.test_client()
    client.get("/set/a/1")
    rotated = Flask(__name__)
    rotated.config.update(SECRET_KEY="new-" + SECRET, SECRET_KEY_FALLBACKS=[SECRET])
    init_app(rotated, store=store)

    @rotated.get("/read")
    def read() -> ResponseReturnValue:
        return dict(flask.session)

    client.application = rotated
    response = client.get("/read")
    assert response.json == {"a": "1"}
    assert "Set-Cookie" in response.headers  # re-signed with the new key


# -- permanent and refresh ---------------------------------------------------------------------


def test_permanent_uses_permanent_session_lifetime(store: MemoryStore) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET, PERMANENT_SESSION_LIFETIME=3600)
    init_app(app, store=store)

    @app.get("/perm")
    def perm() -> ResponseReturnValue:
        flask.session["x"] = 1
        flask.session.permanent = True
        return str(flask.session.get_expiry_age())  # type: ignore[attr-defined]

    response = app.test_client().get("/perm")
    assert response.text == "3600"
    assert "Max-Age=3600;" in response.headers["Set-Cookie"]


def test_permanent_refreshed_by_requests_that_use_it_unless_disabled(store: MemoryStore) -> None:
    def run(refresh: bool, **options: Any) -> tuple[bool, bool]:
        app = Flask(__name__)
        app.config.update(SECRET_KEY=SECRET, SESSION_REFRESH_EACH_REQUEST=refresh)
        init_app(app, store=store, **options)

        @app.get("/perm")
        def perm() -> ResponseReturnValue:
            flask.session["x"] = 1
            flask.session.permanent = True
            return ""

        @app.get("/read")
        def read() -> ResponseReturnValue:
            return str(flask.session.get("x"))

        @app.get("/untouched")
        def untouched() -> ResponseReturnValue:
            return ""

        client = app.test_client()
        client.get("/perm")
        used = "Set-Cookie" in client.get("/read").headers
        unused = "Set-Cookie" in client.get("/untouched").headers
        return used, unused

    assert run(refresh=True) == (True, False)
    assert run(refresh=False) == (False, False)
    assert run(refresh=True, save_every_request=False) == (False, False)


def test_setting_permanent_to_its_value_writes_nothing() -> None:
    with make_store("memory", Path()) as inner:
        store = SwitchableStore(inner)
        app = Flask(__name__)
        app.config["SECRET_KEY"] = SECRET
        init_app(app, store=store)

        @app.get("/")
        def index() -> ResponseReturnValue:
            flask.session.permanent = False  # the default already: nothing changes
            return ""

        response = app.test_client().get("/")
        assert "Set-Cookie" not in response.headers
        assert store.writes == 0


# -- failures ----------------------------------------------------------------------------------


@pytest.fixture
def switchable() -> Iterator[SwitchableStore]:
    with make_store("memory", Path()) as inner:
        yield SwitchableStore(inner)


def logged_in_client(app: Flask) -> Client:
    client = app.test_client()
    client.get("/set/a/1")
    return client


def test_load_failure_is_a_503_with_retry_after(
    switchable: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = logged_in_client(make_app(switchable))
    switchable.fail("load")
    with caplog.at_level(logging.ERROR):
        response = client.get("/read")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Set-Cookie" not in response.headers
    assert any("session load failed" in r.getMessage() for r in caplog.records)


def test_load_failure_reaches_errorhandler_503(switchable: SwitchableStore) -> None:
    app = make_app(switchable)
    seen: list[BaseException] = []

    @app.errorhandler(503)
    def unavailable(error: SessionUnavailable) -> ResponseReturnValue:
        seen.append(error.error)
        return "down for a moment", 503

    client = logged_in_client(app)
    switchable.fail("load")
    response = client.get("/read")
    assert (response.status_code, response.text) == (503, "down for a moment")
    assert isinstance(seen[0], SessionStoreError)
    assert len(seen) == 1  # rendered once, not again when the session is saved


def test_load_failure_reaches_errorhandler_for_session_store_error(
    switchable: SwitchableStore,
) -> None:
    app = make_app(switchable)

    @app.errorhandler(SessionStoreError)
    def unavailable(error: SessionStoreError) -> ResponseReturnValue:
        return "store trouble", 503

    client = logged_in_client(app)
    switchable.fail("load")
    assert client.get("/read").text == "store trouble"


def test_a_swallowed_load_failure_still_answers_503(switchable: SwitchableStore) -> None:
    app = make_app(switchable)

    @app.get("/careless")
    def careless() -> ResponseReturnValue:
        with contextlib.suppress(SessionStoreError):
            flask.session.get("a")
        return "all fine, surely"

    client = logged_in_client(app)
    switchable.fail("load")
    response = client.get("/careless")
    assert response.status_code == 503
    assert response.text != "all fine, surely"


def test_load_failure_in_an_after_request_hook_answers_503_not_500(
    switchable: SwitchableStore,
) -> None:
    app = make_app(switchable)
    app.testing = False  # a real deployment: Flask turns escaping errors into a 500

    @app.after_request
    def peek(response: flask.Response) -> flask.Response:
        flask.session.get("a")
        return response

    client = logged_in_client(app)
    switchable.fail("load")
    assert client.get("/untouched").status_code == 503


def test_load_failure_rendered_by_error_app(switchable: SwitchableStore) -> None:
    errors: list[object] = []

    def error_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        errors.append(environ["sessionware.error"])
        start_response("503 Service Unavailable", [("Content-Type", "text/html")])
        return [b"<h1>back soon</h1>"]

    client = logged_in_client(make_app(switchable, error_app=error_app))
    switchable.fail("load")
    response = client.get("/read")
    assert (response.status_code, response.text) == (503, "<h1>back soon</h1>")
    assert isinstance(errors[0], SessionStoreError)


def test_save_failure_is_a_503_instead_of_the_view(switchable: SwitchableStore) -> None:
    client = logged_in_client(make_app(switchable))
    switchable.fail("update")
    response = client.get("/set/b/secret-value")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert b"ok" not in response.data
    assert "Set-Cookie" not in response.headers


def test_save_failure_goes_through_errorhandler_503(switchable: SwitchableStore) -> None:
    app = make_app(switchable)

    @app.errorhandler(503)
    def unavailable(error: SessionUnavailable) -> ResponseReturnValue:
        return "try again", 503

    client = logged_in_client(app)
    switchable.fail("update")
    assert client.get("/set/b/2").text == "try again"


def test_save_failure_with_keep_sends_the_view_response(switchable: SwitchableStore) -> None:
    client = logged_in_client(make_app(switchable, on_save_error="keep"))
    switchable.fail("update")
    response = client.get("/set/b/2")
    assert (response.status_code, response.text) == (200, "ok")
    assert "Set-Cookie" not in response.headers


def test_unserializable_value_goes_through_flask_error_handling(store: MemoryStore) -> None:
    app = make_app(store)
    app.testing = False
    handled: list[BaseException | None] = []

    @app.get("/bad")
    def bad() -> ResponseReturnValue:
        flask.session["bad"] = object()
        return "never sent"

    @app.errorhandler(500)
    def server_error(error: Any) -> ResponseReturnValue:
        handled.append(error.original_exception)
        return "our 500 page", 500

    response = app.test_client().get("/bad")
    assert (response.status_code, response.text) == (500, "our 500 page")
    assert isinstance(handled[0], SessionSerializationError)
    assert "Set-Cookie" not in response.headers


def test_unserializable_value_raises_in_testing_mode(store: MemoryStore) -> None:
    app = make_app(store)

    @app.get("/bad")
    def bad() -> ResponseReturnValue:
        flask.session["bad"] = object()
        return ""

    with pytest.raises(SessionSerializationError):
        app.test_client().get("/bad")


# -- the lifecycle's rules hold under Flask ----------------------------------------------------


def test_excluded_paths_get_a_session_that_refuses_writes(store: MemoryStore) -> None:
    app = make_app(store, exclude_paths=["/static/"])
    outcome: dict[str, object] = {}

    @app.get("/static/x")
    def static_file() -> ResponseReturnValue:
        outcome["read"] = flask.session.get("a")
        with pytest.raises(RuntimeError, match="exclude_paths"):
            flask.session["a"] = 1
        return ""

    assert app.test_client().get("/static/x").status_code == 200
    assert outcome == {"read": None}


def test_a_stale_cookie_gets_an_empty_session_and_no_cookie(store: MemoryStore) -> None:
    app = make_app(store)
    client = app.test_client()
    client.get("/set/a/1")
    old = client.get_cookie("session")
    assert old is not None
    client.post("/login/ada")
    late = Client(app)
    late.set_cookie("session", old.value)
    response = late.get("/set/b/2")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers  # never touch the browser's new cookie
    assert "b" not in (client.get("/read").json or {})


def test_new_is_true_only_before_the_session_is_stored(store: MemoryStore) -> None:
    app = make_app(store)

    @app.get("/new")
    def new() -> ResponseReturnValue:
        was_new = flask.session.new
        flask.session["seen"] = True
        return str(was_new)

    client = app.test_client()
    assert client.get("/new").text == "True"
    assert client.get("/new").text == "False"


def test_session_transaction_of_flask_client_works(store: MemoryStore) -> None:
    client = make_app(store).test_client()
    with client.session_transaction() as session:
        assert isinstance(session, FlaskSession)
        session["planted"] = "by the test"
    assert client.get("/read").json == {"planted": "by the test"}
