"""The request lifecycle: reads the cookie, loads the session, and at the response carries
out the rule the decision table (``_rules``) picks. No I/O happens here: store calls are
yielded as typed operations (``_flow``), and the outcome tells the adapter what to send.

Invariants kept here, for every store and both middlewares:
- a request that changes nothing writes nothing and sets no cookie;
- a save sends only this request's change, so concurrent requests keep each other's keys;
- a key that was flushed, rotated away or revoked is never written again, and a response
  whose save was dropped for that reason never touches the cookie;
- a bad cookie is "no session", decided before any store call when it can be;
- everything that can fail without the store fails before the first store call.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from ._cookies import MAX_VALUE_LENGTH, Duplicated, find_cookie
from ._errors import SessionStoreError, SessionTooLargeError
from ._expiry import is_dead
from ._flow import Flow, Load, perform
from ._formats import CookiePayload
from ._keys import key_fingerprint
from ._options import Options, build_settings
from ._records import Moved, Record, Stale
from ._request import (
    NOTHING,
    TOO_LARGE_BODY,
    UNAVAILABLE_BODY,
    CloseSocket,
    Outcome,
    Replacement,
    RequestState,
    plain,
)
from ._rules import Began, Facts, decide
from ._saving import FOLLOW_HOPS, Prepared, Saver, warn_dropped
from ._serializers import FieldCodec
from ._session import Session
from ._settings import Settings

logger = logging.getLogger("sessionware.lifecycle")

# The adapters (asgi, wsgi, flask) reach the core through this module alone.
__all__ = [
    "NOTHING",
    "CloseSocket",
    "Lifecycle",
    "Options",
    "Outcome",
    "Replacement",
    "RequestState",
    "Session",
    "SessionStoreError",
    "build_settings",
]
WEBSOCKET_NO_COOKIE = (
    "a websocket cannot send a cookie, so this session cannot get a new key here: call "
    "cycle_key()/create(), or store data in a session that has no key yet, in an HTTP "
    "request (flush() alone is fine: the old key stops working at once)"
)


class Lifecycle:
    """The flows of one middleware; stateless apart from its settings, so one instance
    serves every request and thread."""

    __slots__ = ("_saver", "session_class", "settings")

    def __init__(self, settings: Settings, session_class: type[Session] = Session) -> None:
        self.settings = settings
        self.session_class = session_class  # a framework's own Session subclass (Flask)
        self._saver = Saver(settings)

    # -- the request begins ----------------------------------------------------------------

    def begin(self, kind: str, path: str, cookie_headers: list[str]) -> RequestState | None:
        """Read the cookie (no I/O); ``None`` for an excluded path (no session at all)."""
        settings = self.settings
        if settings.exclude_paths and path.startswith(settings.exclude_paths):
            return None
        session = self.session_class(policy=settings.policy)
        if kind == "websocket":
            session.guard(WEBSOCKET_NO_COOKIE)
        value = find_cookie(cookie_headers, settings.cookie.name) if cookie_headers else None
        if value is None:
            return RequestState(session, kind, Began.NO_COOKIE)
        if isinstance(value, Duplicated) or not value or len(value) > MAX_VALUE_LENGTH:
            return RequestState(session, kind, Began.BAD)
        decoded = settings.format.decode(value)
        if decoded is None:
            return RequestState(session, kind, Began.BAD)
        state = RequestState(
            session,
            kind,
            Began.UNKNOWN,  # until the load says otherwise
            cookie_value=value,
            cookie_key=decoded.key,
            old_secret=decoded.old_secret,
            needs_load=decoded.payload is None,
        )
        payload = decoded.payload
        # A payload cookie is the session itself: nothing to load, its data is copied
        # out at first use.
        if payload is not None and not is_dead(
            payload.expires_at, payload.created_at, settings.policy, time.time()
        ):
            state.began = Began.LIVE
            session.defer(partial(_fill_from_cookie, decoded.key, payload))
        return state

    def open(self, state: RequestState, now: float) -> Flow[Replacement | CloseSocket | None]:
        """Load the session the cookie names into ``state.session``; on a store failure,
        what to send instead of running the app (and the error is kept in ``state``)."""
        try:
            yield from self._load(state, now)
        except SessionStoreError as exc:
            state.load_error = exc
            state.session.resolved()
            _log_failure("load", exc)
            return self.refusal(state.kind, exc)
        return None

    def _load(self, state: RequestState, now: float) -> Flow[None]:
        session = state.session
        key = state.cookie_key
        state.needs_load = False
        if key is None:
            return
        loaded = yield from perform(Load(key, now))
        hops = 0
        while isinstance(loaded, Moved) and hops < FOLLOW_HOPS:
            key, hops = loaded.key, hops + 1
            loaded = yield from perform(Load(key, now))
        if isinstance(loaded, Record):
            if not is_dead(loaded.expires_at, loaded.created_at, self.settings.policy, now):
                # Decoded at the session's first use: a request that never touches it
                # (most of an app's routes) pays no decoding. Until then it counts as live.
                state.began = Began.FOLLOWED if hops else Began.LIVE
                state.issued_at = loaded.issued_at
                state.loaded_user = loaded.user
                if self.settings.store.max_data_bytes is not None:
                    state.loaded_bytes = _size(loaded)
                session.defer(partial(_decode_record, self.settings.codec, key, loaded))
                return
        elif hops or isinstance(loaded, Stale | Moved):
            state.began = Began.STALE  # a pointer that leads nowhere: its key ended lately
            self._saver.count("stale")
        session.resolved()

    def refusal(self, kind: str, error: SessionStoreError) -> Replacement | CloseSocket:
        """What a request gets when its session cannot load (§6): the app is not called."""
        if kind == "websocket":
            return CloseSocket(1011, "session store unavailable")
        return self.unavailable(error)

    def unavailable(self, error: SessionStoreError) -> Replacement:
        """The outage response (§6): 503, plain text, ``Retry-After``."""
        return plain(503, UNAVAILABLE_BODY, error)

    # -- the response ----------------------------------------------------------------------

    def needs_close(self, state: RequestState) -> bool:
        """False when the response cannot need anything (the common cookie-less read)."""
        session = state.session
        if state.began is Began.NO_COOKIE:
            return session.accessed or session.modified or self.settings.save_every_request
        if state.began is Began.LIVE and not (
            session.accessed or session.modified or state.old_secret or self._refreshes()
        ):
            return False  # rule 4, and no Vary to add: the common request that ignores it
        # Never loaded (lazy WSGI, explicit mode) nor needing a refresh: rule 3, no work.
        unused = state.needs_load and not session.loaded and not session.accessed
        return not (unused and not self._refreshes())

    def close(self, state: RequestState, status: int, now: float) -> Flow[Outcome]:
        """Persist what changed and decide the cookie, by the table in ``_rules``."""
        session = state.session
        if state.load_error is not None:
            if state.kind == "websocket":
                return NOTHING
            return Outcome(replacement=self.unavailable(state.load_error))
        if state.needs_load and status < 500 and self._refreshes():
            # Rolling expiry and renewal concern every request that carries a session,
            # including those that never used it (lazy WSGI loading, explicit mode).
            try:
                yield from self._load(state, now)
            except SessionStoreError as exc:
                _log_failure("load", exc)
                return self._save_failed(session.accessed, exc)
        if (
            state.began is Began.LIVE
            and not session.unreadable
            and not session.modified
            and not state.old_secret
            and not self._refreshes()
        ):
            return Outcome(None, session.accessed)  # rule 4, the common read: no facts needed
        if not state.needs_load:
            session.settle()  # the rules read the contents: decode a session never used
            if session.unreadable:  # decoded (now or in the app): not ours after all
                _forget_record(state)
        plan = decide(self._facts(state, status, now))
        vary = session.accessed
        if plan.rule == 2 and session.modified:
            warn_dropped(state.cookie_key, "its key was ended lately (logout, login or revoke)")
            self._saver.count("dropped")
        if plan.cookie == "delete" and plan.end_old is None:
            return Outcome(self.settings.cookie.delete_cookie(), True)
        if plan.cookie is None and plan.write is None and plan.end_old is None:
            return Outcome(None, vary)
        try:
            prepared = self._saver.prepare(state, plan, now)
        except SessionTooLargeError as exc:
            _log_failure("save", exc)
            return Outcome(None, vary, plain(500, TOO_LARGE_BODY, exc))
        try:
            saved, key = yield from self._saver.carry_out(state, plan, prepared, now)
        except SessionStoreError as exc:
            _log_failure("save", exc)
            return self._save_failed(vary, exc)
        except SessionTooLargeError as exc:  # the store learned its limit only now
            _log_failure("save", exc)
            return Outcome(None, vary, plain(500, TOO_LARGE_BODY, exc))
        if not saved:
            return Outcome(None, vary)  # dropped: the cookie is left alone (§5)
        if plan.cookie == "delete":
            return Outcome(self.settings.cookie.delete_cookie(), True)
        if plan.cookie is None or key is None:
            return Outcome(None, vary)
        session.saved_as(key)
        return Outcome(self._set_cookie(state, key, prepared, now), True)

    def _refreshes(self) -> bool:
        return self.settings.save_every_request or self.settings.renew_after is not None

    def _save_failed(self, vary: bool, exc: SessionStoreError) -> Outcome:
        """§6: the app has run; answer 503, or with ``on_save_error="keep"`` its response."""
        if self.settings.on_save_error == "keep":
            return Outcome(None, vary)
        return Outcome(None, vary, self.unavailable(exc))

    def _facts(self, state: RequestState, status: int, now: float) -> Facts:
        session = state.session
        settings = self.settings
        renewal_due = (
            settings.renew_after is not None
            and state.issued_at is not None
            and state.kind == "http"
            and settings.store.server_side
            and now - state.issued_at >= settings.renew_after
        )
        loaded = session.loaded
        return Facts(
            began=state.began,
            status=status,
            loaded=loaded,
            modified=session.modified,
            save_every_request=settings.save_every_request,
            old_secret=state.old_secret,
            renewal_due=renewal_due,
            rotated=loaded and session.rotated,
            has_key=loaded and session.session_key is not None,
            empty=loaded and session.is_empty(),
        )

    def _set_cookie(self, state: RequestState, key: str, prepared: Prepared, now: float) -> str:
        settings = self.settings
        if prepared.cookie is not None and prepared.cookie[0] == key:
            return prepared.cookie[1]  # encoded and checked before the save
        if key == state.cookie_key and not state.old_secret and not settings.format.carries_payload:
            value = state.cookie_value or key  # the client's own value: no need to sign again
        else:
            value = settings.format.encode(key, prepared.payload)
        return self._saver.cookie_header(state.session, value, prepared.expires_at, now)


def _decode_record(codec: FieldCodec, key: str, record: Record, session: Session) -> None:
    """A loaded record's data into the session, at its first use (see ``Session.defer``)."""
    try:
        data = codec.decode(record.fields)
    except ValueError as exc:
        logger.warning(
            "session %s holds data this serializer cannot read (%s); treated as absent",
            key_fingerprint(key),
            exc,
        )
        session.resolved(readable=False)
        return
    session.fill(data, key, expiry=record.expiry, created_at=record.created_at)
    session.resolved()


def _forget_record(state: RequestState) -> None:
    """The loaded record was unreadable: the request began as from an unknown key."""
    state.began = Began.UNKNOWN
    state.issued_at = state.loaded_user = None
    state.loaded_bytes = 0


def _fill_from_cookie(key: str, payload: CookiePayload, session: Session) -> None:
    session.fill(payload.data(), key, expiry=payload.expiry, created_at=payload.created_at)
    session.resolved()


def _size(record: Record) -> int:
    blob = getattr(record.fields, "blob", None)
    if isinstance(blob, bytes):
        return len(blob)
    return sum(map(len, record.fields.values()))


def _log_failure(action: str, exc: Exception) -> None:
    """Log a store or size failure by its own message only: the chained driver traceback
    may quote SQL parameters or command arguments, which include session keys."""
    logger.error("session %s failed: %s: %s", action, type(exc).__name__, exc)
