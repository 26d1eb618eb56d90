"""Saving a session: what the decision table's plan writes, encoded before the first
store call, then the store operations carried out in order (``Lifecycle.close`` uses it).

Everything that can fail without the store (a value the serializer cannot encode, a
session too large for its store or its cookie) fails in ``prepare``, so a failing save
leaves the stored session as it was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import _observe
from ._cookies import MAX_COOKIE_SIZE
from ._errors import (
    CookieTooLargeError,
    SessionSerializationError,
    SessionStoreError,
    SessionTooLargeError,
)
from ._expiry import record_expires_at
from ._flow import Delete, Flow, Insert, Op, Rotate, Update, perform
from ._flow import Renew as RenewOp
from ._formats import Payload
from ._keys import key_fingerprint, new_key
from ._records import Change, Moved, Record, kept_fields
from ._request import RequestState
from ._rules import Plan
from ._session import Session
from ._settings import Settings
from ._store import Written, user_text
from ._tagged import known_decode

logger = logging.getLogger("sessionware.lifecycle")

_CREATE_ATTEMPTS = 5  # a collision of 256-bit keys means something else is wrong
FOLLOW_HOPS = 3  # pointers followed at most: a renewal of a renewal is rare, more is odd


@dataclass(slots=True)
class Prepared:
    """Everything a save writes, encoded before the first store call."""

    record: Record | None  # a whole session (Insert, Rotate)
    change: Change | None  # a delta (Update)
    expires_at: float
    payload: Payload | None
    # A payload cookie's key and Set-Cookie header, encoded once (and checked for size).
    cookie: tuple[str, str] | None = None


class Saver:
    """Encodes and writes the saves of one middleware."""

    __slots__ = ("_keeps_decoded", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # A store that keeps Python objects is given what its fields decode to, when
        # that is known without decoding (see ``KeptFields``).
        self._keeps_decoded = settings.store.keeps_objects and settings.codec.tagged_json

    # -- encoding, before any store call ---------------------------------------------------

    def prepare(self, state: RequestState, plan: Plan, now: float) -> Prepared:
        """Encode what the plan writes; raises ``SessionSerializationError`` (to the app's
        error handling) or ``SessionTooLargeError`` before anything is written."""
        settings = self.settings
        session = state.session
        codec = settings.codec
        created_at = session.created_at if session.created_at is not None else now
        expires_at = record_expires_at(session.expiry, settings.policy, created_at, now)
        if settings.format.carries_payload:
            # The cookie is the session: its store keeps nothing, so nothing else is encoded.
            if plan.cookie != "set":
                return Prepared(None, None, expires_at, None)
            payload = Payload(
                _by_str_keys(session.raw_data()), created_at, expires_at, session.expiry
            )
            cookie = self._check_cookie(state, payload, now)
            return Prepared(None, None, expires_at, payload, cookie)
        record = change = None
        whole = plan.end_old == "rotate" or plan.write == "insert"
        if whole:
            data = _by_str_keys(session.raw_data())
            fields = codec.encode_all(data)
            self._check_size(sum(map(len, fields.values())))
            if self._keeps_decoded:
                fields = kept_fields(fields, known_decode(data))
            record = Record(
                fields,
                created_at,
                expires_at,
                session.expiry,
                key_at=now,
                updated_at=now,
                user=self._user_of(session),
            )
        elif plan.write == "update":
            with_reads = session.flagged or settings.save_every_request
            names = session.names_to_save(with_reads)
            values = {
                name if type(name) is str else _str_key(name): session.raw(name) for name in names
            }
            fields = {name: codec.encode(name, value) for name, value in values.items()}
            if settings.store.max_data_bytes is not None:
                self._check_size(state.loaded_bytes + sum(map(len, fields.values())))
            user_changed, user = self._user_change(session, names)
            change = Change(
                fields,
                _stored_names(session.deleted_names),
                session.cleared,
                session.expiry_changed,
                session.expiry,
                expires_at,
                user_changed,
                user,
                known_decode(values) if self._keeps_decoded else None,
            )
        return Prepared(record, change, expires_at, None)

    def _check_size(self, size: int) -> None:
        limit = self.settings.store.max_data_bytes
        if limit is not None and size > limit:
            store = type(self.settings.store).__name__
            raise SessionTooLargeError(
                "session data", size, limit, f"{store} keeps at most {limit} bytes per session"
            )

    def _check_cookie(self, state: RequestState, payload: Payload, now: float) -> tuple[str, str]:
        """The cookie's key and header, refused here if a browser would not keep it."""
        key = state.session.session_key or new_key()
        try:
            value = self.settings.format.encode(key, payload)
        except (TypeError, ValueError, OverflowError):
            # Find the culprit value by key, for a SessionSerializationError naming it.
            self.settings.codec.encode_all(payload.data)
            raise
        return key, self.cookie_header(state.session, value, payload.expires_at, now)

    def cookie_header(self, session: Session, value: str, expires_at: float, now: float) -> str:
        """The ``Set-Cookie`` header that gives the browser ``value``; a browser would drop
        a longer one, so that is an error (``CookieTooLargeError``)."""
        max_age = None
        if not session.get_expire_at_browser_close():
            max_age = max(0, int(expires_at - now))
        header = self.settings.cookie.set_cookie(value, max_age, now)
        if len(header) > MAX_COOKIE_SIZE:
            raise CookieTooLargeError(len(header), MAX_COOKIE_SIZE)
        return header

    def _user_of(self, session: Session) -> str | None:
        user_key = self.settings.user_key
        if user_key is None:
            return None
        return _user_text(user_key, session.raw_get(user_key))

    def _user_change(self, session: Session, names: list[str]) -> tuple[bool, str | None]:
        user_key = self.settings.user_key
        if user_key is None:
            return False, None
        if user_key in names or user_key in session.deleted_names or session.cleared:
            return True, _user_text(user_key, session.raw_get(user_key))
        return False, None

    # -- the store calls -------------------------------------------------------------------

    def carry_out(
        self, state: RequestState, plan: Plan, prepared: Prepared, now: float
    ) -> Flow[tuple[bool, str | None]]:
        """Perform the plan's operations in order: whether the save went through (``False``:
        dropped, §5), and the key the session ends under."""
        session = state.session
        if not self.settings.store.server_side:
            return self._cookie_only(plan, prepared)
        key = session.loaded_key
        stale_until = now + self.settings.stale_key_window
        if plan.end_old is not None and key is not None:
            if plan.end_old == "rotate":
                new = session.session_key or new_key()
                record = prepared.record
                assert record is not None
                done, _ = yield from _following(
                    key, lambda k: Rotate(k, new, record, now, stale_until)
                )
                key = new
            else:
                done, _ = yield from _following(key, lambda k: Delete(k, now, stale_until))
                key = None
            if not done:
                return self._dropped(session.loaded_key)
            self.count("rotated" if plan.end_old == "rotate" else "flushed")
        if plan.renew and key is not None:
            new = new_key()
            grace_until = now + self.settings.renew_grace
            renewed = yield from perform(RenewOp(key, new, now, grace_until))
            if renewed is False:
                return self._dropped(key)
            if renewed is True:
                self.count("renewed")
            # True: ours is the renewal; Moved: a concurrent request renewed it first.
            key = new if renewed is True else renewed.key
        if plan.write == "update" and key is not None:
            change = prepared.change
            assert change is not None
            updated: Written = yield from perform(Update(key, change, now))
            if isinstance(updated, Moved):  # renewed meanwhile: follow it (rarely taken)
                updated, key = yield from _following(updated.key, lambda k: Update(k, change, now))
            if not updated:
                return self._dropped(key)
        elif plan.write == "insert":
            assert prepared.record is not None
            first = prepared.cookie[0] if prepared.cookie is not None else session.session_key
            key = yield from _insert(first, prepared.record)
            self.count("created")
        return True, key

    def _cookie_only(self, plan: Plan, prepared: Prepared) -> tuple[bool, str | None]:
        """A store that keeps nothing (the cookie is the session): no store call at all."""
        if plan.end_old is not None:
            self.count("rotated" if plan.end_old == "rotate" else "flushed")
        if plan.write == "insert":
            self.count("created")
        if prepared.cookie is None:  # a logout: the cookie goes, nothing is issued
            return True, None
        return True, prepared.cookie[0]

    def _dropped(self, key: str | None) -> tuple[bool, None]:
        warn_dropped(key, "a concurrent request ended its key first (logout, login or revoke)")
        self.count("dropped")
        return False, None

    def count(self, event: str) -> None:
        _observe.count(event, type(self.settings.store).__name__)


def _following(key: str, make: Any) -> Flow[tuple[Written, str]]:
    """Perform ``make(key)``; while the key turns out renewed, again at its new key."""
    for _ in range(FOLLOW_HOPS + 1):
        op: Op[Written] = make(key)
        done = yield from perform(op)
        if not isinstance(done, Moved):
            return done, key
        key = done.key
    return False, key


def _insert(key: str | None, record: Record) -> Flow[str]:
    """Insert under ``key`` (or a fresh one), drawing a new key if it is somehow taken."""
    for _ in range(_CREATE_ATTEMPTS):
        key = key or new_key()
        if (yield from perform(Insert(key, record))):
            return key
        key = None
    raise SessionStoreError("could not find a free session key; is the store answering sanely?")


def _str_key(name: object) -> str:
    """A session key as every store keeps it: a plain ``str`` (a ``str`` subclass, such as
    a ``StrEnum`` member, by its text); anything else is refused before any store call."""
    if type(name) is str:
        return name
    if isinstance(name, str):
        return str.__str__(name)
    raise SessionSerializationError.for_key(name)


def _stored_names(names: frozenset[Any]) -> frozenset[str]:
    """Deleted keys as stores name them; a key that is not a str was never stored."""
    if not names or all(type(name) is str for name in names):
        return names
    return frozenset(_str_key(name) for name in names if isinstance(name, str))


def _by_str_keys(data: dict[Any, Any]) -> dict[str, Any]:
    if all(type(name) is str for name in data):
        return data
    return {_str_key(name): value for name, value in data.items()}


def _user_text(user_key: str, value: object) -> str | None:
    if value is None:
        return None
    try:
        return user_text(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"session[{user_key!r}] holds the user id for user_key, so it must be a str or "
            f"an int, not {type(value).__name__}"
        ) from None


def warn_dropped(key: str | None, why: str) -> None:
    logger.warning(
        "session %s was not saved: %s; its cookie is left as it is",
        key_fingerprint(key) if key else "-",
        why,
    )
