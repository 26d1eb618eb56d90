"""The session ``flask.session`` holds under the Flask integration: a sessionware ``Session``
that is also Flask's ``SessionMixin``, so Flask and its extensions see what they expect.

Flask's ``permanent`` flag is mapped onto expiry instead of a ``"_permanent"`` key in the
data: a permanent session has an idle lifetime (the integration's ``max_age``, Flask's
``PERMANENT_SESSION_LIFETIME`` by default), a non-permanent one lives until the browser
closes. The data holds only what the application stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from flask.sessions import NullSession, SessionMixin

from ._session import Session

if TYPE_CHECKING:
    from ._lifecycle import RequestState


class FlaskSession(Session, SessionMixin):
    """``flask.session``: Django's session API plus Flask's ``permanent``, ``new``,
    ``modified`` and ``accessed``."""

    # The lifecycle state of the request this session belongs to (None when the
    # application built a session by hand): how ``save_session`` finds it again.
    request_state: RequestState | None = None

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser (Flask's meaning); setting it changes
        the session's expiry, and setting it to the value it has changes nothing."""
        return not self.get_expire_at_browser_close()

    @permanent.setter
    def permanent(self, value: bool) -> None:
        if bool(value) == self.permanent:
            return
        if value:
            # Not permanent means "browser close", whose age is the default idle
            # lifetime: that lifetime, now fixed, is what a permanent session keeps.
            self.set_expiry(self.get_expiry_age())
        else:
            self.set_expiry(0)

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True when this request did not begin from a stored session."""
        self.session_key  # noqa: B018 - loads a session that is not loaded yet
        return self.loaded_key is None


class ExcludedSession(NullSession):
    """``flask.session`` on a path in ``exclude_paths``: readable and empty, and any
    write says why it cannot be kept (Flask's own message would blame the secret key)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise RuntimeError(
            "the session is unavailable on this path: it is in the exclude_paths given "
            "to sessionware.flask.init_app"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = update = setdefault = _refuse
