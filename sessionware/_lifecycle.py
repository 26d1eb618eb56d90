"""The request lifecycle: the single home of the response rules (API.md §4 and §5).

Invariants kept here, for every store and both middlewares:
- a request that changes nothing writes nothing and sets no cookie;
- a save sends only this request's change, so concurrent requests keep each other's keys;
- a key that was flushed or rotated away is never written again (no resurrection);
- a bad cookie is "no session", decided before any store call when it can be;
- nothing is saved for a response with status >= 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ._config import Settings
from ._cookies import MAX_COOKIE_SIZE, MAX_VALUE_LENGTH, Duplicated
from ._errors import CookieTooLargeError
from ._expiry import is_dead, record_expires_at
from ._flow import Flow, create, delete, load, update
from ._keys import is_valid_key, key_fingerprint, new_key
from ._records import Record
from ._session import Session

logger = logging.getLogger("sessionware")

_CREATE_ATTEMPTS = 5  # a collision of 256-bit keys means something else is wrong


@dataclass(slots=True)
class RequestState:
    """What the response needs to know about how the request's session began."""

    session: Session
    had_cookie: bool
    resign: bool = False  # signed with an older secret: re-send it signed with the first


@dataclass(frozen=True, slots=True)
class Outcome:
    """The headers the response gets: a ``Set-Cookie`` value (or none), and whether to Vary."""

    set_cookie: str | None
    vary: bool


def fresh_state(settings: Settings, had_cookie: bool = False) -> RequestState:
    """A new, empty session: for a request without a cookie, or with one that leads nowhere.

    The adapters call it directly for cookie-less requests, which need no store call.
    """
    return RequestState(Session(policy=settings.policy), had_cookie)


def open_session(
    settings: Settings, cookie: str | Duplicated | None, now: float
) -> Flow[RequestState]:
    """Load the session the cookie names; anything unreadable gives an empty session."""
    policy = settings.policy
    if cookie is None:
        return fresh_state(settings)
    if isinstance(cookie, Duplicated) or not cookie or len(cookie) > MAX_VALUE_LENGTH:
        return fresh_state(settings, had_cookie=True)
    if settings.codec is not None:
        decoded = settings.codec.decode(cookie)
        if decoded is None:
            return fresh_state(settings, had_cookie=True)
        key, record, resign = decoded
    else:
        key, resign = cookie, False
        if settings.signer is not None:
            verified = settings.signer.unsign(cookie)
            if verified is None:
                return fresh_state(settings, had_cookie=True)
            key, resign = verified
        if not is_valid_key(key):
            return fresh_state(settings, had_cookie=True)
        found: Record | None = yield load(key, now)
        if found is None:
            return fresh_state(settings, had_cookie=True)
        record = found
    if is_dead(record.expires_at, record.created_at, policy, now):
        return fresh_state(settings, had_cookie=True)
    # Each load gives a record of its own (decoded, or copied by the memory store).
    session = Session(
        record.data, key, expiry=record.expiry, created_at=record.created_at, policy=policy
    )
    return RequestState(session, had_cookie=True, resign=resign)


def close_session(
    settings: Settings, state: RequestState, status: int, now: float
) -> Flow[Outcome]:
    """Persist what changed and decide the cookie, by the rules in the module docstring."""
    session = state.session
    vary = session.accessed
    if status >= 500:
        return Outcome(None, vary)
    save = session.modified or settings.save_every_request
    if not (save or state.resign or session.is_empty()):
        return Outcome(None, vary)  # the common read-only request: nothing to write
    dropped = Outcome(settings.cookie.delete_cookie() if state.had_cookie else None, vary)
    old_key = session._loaded_key
    if session.rotated and settings.store is not None and old_key is not None:
        existed = yield delete(old_key)
        if not existed and session.session_key is not None:
            # cycle_key() on a record another request already removed: do not resurrect it.
            _warn_dropped(old_key)
            return dropped
    if session.is_empty():
        return dropped
    if not (save or state.resign):
        return Outcome(None, vary)
    created_at = now if session._created_at is None else session._created_at
    expires_at = record_expires_at(session._expiry, settings.policy, created_at, now)
    key = session.session_key
    if settings.codec is not None:
        key = key or new_key()
        record = Record(session._data, created_at, expires_at, session._expiry)
        value = settings.codec.encode(key, record)
    else:
        if key is not None and key == old_key:
            # Only a re-signed cookie (rotated secret) needs no store write.
            if save and not (yield update(key, session.change(expires_at), now)):
                _warn_dropped(key)
                return dropped
        else:
            record = Record(session._data, created_at, expires_at, session._expiry)
            key = yield from _create_record(key, record)
        value = key if settings.signer is None else settings.signer.sign(key)
    session._key = key
    max_age = None if session.get_expire_at_browser_close() else max(0, int(expires_at - now))
    header = settings.cookie.set_cookie(value, max_age, now)
    if len(header) > MAX_COOKIE_SIZE:
        raise CookieTooLargeError(len(header), MAX_COOKIE_SIZE)
    return Outcome(header, vary)


def _create_record(key: str | None, record: Record) -> Flow[str]:
    """Insert under ``key`` (or a fresh one), drawing a new key if it is somehow taken."""
    for _ in range(_CREATE_ATTEMPTS):
        key = key or new_key()
        if (yield create(key, record)):
            return key
        key = None
    raise RuntimeError("could not find a free session key; is the store answering sanely?")


def _warn_dropped(key: str) -> None:
    logger.warning(
        "session %s was ended by a concurrent request (logout or key rotation); "
        "this request's changes are dropped and its cookie deleted",
        key_fingerprint(key),
    )


def needs_close(settings: Settings, session: Session, had_cookie: bool) -> bool:
    """False when the response cannot need anything: an untouched session and no cookie."""
    return had_cookie or session.accessed or session.modified or settings.save_every_request
