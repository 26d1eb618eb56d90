"""Flask-Login's logins and logouts as key changes, when Flask-Login is installed.

Flask-Login writes its keys into ``flask.session`` and nothing more, which was enough
for Flask's signed-cookie sessions. A server-side session needs two more steps, the ones
Django's ``login``/``logout`` take: a new key at login (an attacker who planted a session
key in the browser must not inherit the login) and the stored session ended at logout.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, session

from ._flask_session import FlaskSession

# What Flask-Login leaves in the session during logout for its own after-request hook:
# "clear" tells it to delete the remember-me cookie, so it must survive the flush.
_REMEMBER = "_remember"


def connect(app: Flask) -> None:
    """Rotate the key when Flask-Login logs a user in, flush when it logs one out."""
    try:
        from flask_login import user_logged_in, user_logged_out
    except ImportError:
        return
    # Connected for this app only; module-level receivers, so the weak references hold.
    user_logged_in.connect(_logged_in, app)
    user_logged_out.connect(_logged_out, app)


def _current() -> FlaskSession | None:
    current = session._get_current_object()  # type: ignore[attr-defined]
    return current if isinstance(current, FlaskSession) else None


def _logged_in(sender: Flask, **extra: Any) -> None:
    current = _current()
    if current is not None:
        current.cycle_key()


def _logged_out(sender: Flask, **extra: Any) -> None:
    current = _current()
    if current is None:
        return
    remember = current.get(_REMEMBER)
    current.flush()
    if remember is not None:
        current[_REMEMBER] = remember
