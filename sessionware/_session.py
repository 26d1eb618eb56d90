"""The ``Session``: Django's ``request.session`` as a real ``dict`` that records what changed.

Its data lives in the dict itself, so ``json.dumps(session)``, ``session == {...}``,
``|``, ``popitem()`` and ``copy()`` behave as on any dict (and as on Starlette's session).
Every mutating method also records the change, so the lifecycle can save a delta. No I/O
happens here: a session that is not loaded yet (lazy WSGI loading, ASGI explicit mode)
runs its loader, given by the lifecycle, at the first access.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._expiry import (
    Expiry,
    ExpiryPolicy,
    expire_at_browser_close,
    expiry_age,
    expiry_from_value,
    to_datetime,
)
from ._keys import info_id, new_key

TEST_COOKIE_NAME = "testcookie"
TEST_COOKIE_VALUE = "worked"

_DEFAULT_POLICY = ExpiryPolicy()
_MISSING: Any = object()
# Held in the dict while it is not loaded, so C code that reads a dict's size directly
# (the json encoder does) sees a non-empty dict and calls ``items()``, which loads it.
_UNLOADED: Any = object()
# Values that cannot change in place: reading them never needs a write-back.
_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None), tuple, frozenset})


class Session(dict[str, Any]):
    """Session data for one request: a ``dict`` with Django's ``request.session`` API.

    Mutating methods record what changed, so a save writes only that; ``modified``,
    ``accessed``, ``flush()``, ``cycle_key()`` and the expiry methods mean what they mean
    in Django (the docs' "Migrating" lists what differs).
    """

    __slots__ = (
        "_cleared",
        "_created_at",
        "_deleted",
        "_expiry",
        "_expiry_changed",
        "_flagged",
        "_guard",
        "_key",
        "_loaded_key",
        "_modified",
        "_pending",
        "_policy",
        "_read",
        "_set",
        "_unreadable",
        "accessed",
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        key: str | None = None,
        *,
        expiry: Expiry | None = None,
        created_at: float | None = None,
        policy: ExpiryPolicy = _DEFAULT_POLICY,
    ) -> None:
        if data:
            dict.update(self, data)
        self._key = key
        self._loaded_key = key  # the stored record this request began from
        self._expiry = expiry
        self._created_at = created_at
        self._policy = policy
        self._set: set[str] = set()
        self._deleted: set[str] = set()
        self._read: set[str] = set()
        self._cleared = False
        self._expiry_changed = False
        self._pending: Callable[[Session], None] | None = None
        self._unreadable = False
        self._guard: str | None = None
        self.accessed = False
        self._modified = False
        self._flagged = False

    # -- reading -----------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        if self._pending is not None:
            self._resolve()
        self.accessed = True
        self._read.add(name)
        return dict.__getitem__(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        if self._pending is not None:
            self._resolve()
        self.accessed = True
        self._read.add(name)
        return dict.get(self, name, default)

    def __contains__(self, name: object) -> bool:
        self._touch()
        return dict.__contains__(self, name)

    def __iter__(self) -> Iterator[str]:
        self._touch_all()
        return iter(list(dict.keys(self)))

    def __reversed__(self) -> Iterator[str]:
        self._touch_all()
        return iter(list(reversed(dict.keys(self))))

    def __len__(self) -> int:
        self._touch()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._touch()
        return dict.keys(self)

    def values(self) -> Any:
        self._touch_all()
        return dict.values(self)

    def items(self) -> Any:
        self._touch_all()
        return dict.items(self)

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` with the same data (as ``dict.copy`` of Starlette's session)."""
        self._touch_all()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._touch()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._touch_all()
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(dict.items(self))
        merged.update(other)
        return merged

    def __ror__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._touch_all()
        if not isinstance(other, Mapping):
            return NotImplemented
        merged = dict(other)
        merged.update(dict.items(self))
        return merged

    def __repr__(self) -> str:
        # Names only: a session is often logged, and its values may be secrets.
        if self._pending is not None:
            return "<Session (not loaded yet)>"
        return f"<Session keys={sorted(dict.keys(self))!r}>"

    def __reduce__(self) -> Any:
        self._touch_all()
        return (dict, (dict(dict.items(self)),))

    # -- writing -----------------------------------------------------------------------

    def __setitem__(self, name: str, value: Any) -> None:
        if self._pending is not None:
            self._resolve()
        if self._guard is not None and self._key is None:
            raise RuntimeError(self._guard)
        self.accessed = self._modified = True
        dict.__setitem__(self, name, value)
        self._set.add(name)
        self._deleted.discard(name)

    def __delitem__(self, name: str) -> None:
        self._touch()
        dict.__delitem__(self, name)
        self._forget(name)

    def pop(self, name: str, default: Any = _MISSING) -> Any:
        self._touch()
        if dict.__contains__(self, name):
            value = dict.pop(self, name)
            self._forget(name)
            return value
        if default is _MISSING:
            raise KeyError(name)
        return default

    def popitem(self) -> tuple[str, Any]:
        """Removes and returns the *last* item, as ``dict.popitem`` does."""
        self._touch()
        name, value = dict.popitem(self)
        self._forget(name)
        return name, value

    def setdefault(self, name: str, default: Any = None) -> Any:
        self._touch()
        if dict.__contains__(self, name):
            self._read.add(name)
            return dict.__getitem__(self, name)
        self[name] = default
        return default

    def update(self, other: Any = (), /, **more: Any) -> None:
        """As ``dict.update``; every key given is recorded as set."""
        items: Iterable[tuple[str, Any]]
        if isinstance(other, Mapping):
            items = [(name, other[name]) for name in other]
        elif hasattr(other, "keys"):
            items = [(name, other[name]) for name in other.keys()]  # noqa: SIM118
        else:
            items = list(other)
        for name, value in items:
            self[name] = value
        for name, value in more.items():
            self[name] = value

    def __ior__(self, other: Any) -> Session:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        """Drop all data but keep the key (Django: the session is saved, empty)."""
        self._touch()
        self._modified = True
        dict.clear(self)
        self._set.clear()
        self._deleted.clear()
        self._read.clear()
        self._cleared = True

    def _forget(self, name: str) -> None:
        self._modified = True
        self._set.discard(name)
        self._read.discard(name)
        self._deleted.add(name)

    def _touch(self) -> None:
        if self._pending is not None:
            self._resolve()
        self.accessed = True

    def _touch_all(self) -> None:
        """Every value was handed out: any of them may be changed in place."""
        self._touch()
        self._read.update(dict.keys(self))

    @property
    def modified(self) -> bool:
        """Whether this request changed the session. Set it to ``True`` after changing a
        value in place (``session["cart"].append(...)``) so the change is saved."""
        return self._modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = self._flagged = bool(value)

    # -- key lifecycle ------------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """The current key; ``None`` until the session has (or is about to get) a record."""
        if self._pending is not None:
            self._resolve()
        return self._key

    @property
    def info_id(self) -> str | None:
        """This session's public handle (``SessionInfo.id``), to mark "this device"."""
        key = self.session_key
        return None if key is None else info_id(key)

    def is_empty(self) -> bool:
        """No data, no key, no custom expiry (after ``clear()`` the key remains).

        A custom expiry counts as content, as in Django where it lives in the data.
        """
        if self._pending is not None:
            self._resolve()
        return self._key is None and not dict.__len__(self) and self._expiry is None

    def flush(self) -> None:
        """Log out: drop data and key; the old record is deleted at the response."""
        self._touch()
        self._modified = True
        dict.clear(self)
        self._set.clear()
        self._deleted.clear()
        self._read.clear()
        self._cleared = True
        self._key = None
        self._expiry = None
        self._expiry_changed = True
        self._created_at = None

    def cycle_key(self) -> None:
        """Keep the data under a new key, generated now; the old record goes at the response."""
        if self._pending is not None:
            self._resolve()
        if self._guard is not None:
            raise RuntimeError(self._guard)
        self._modified = True
        self._key = new_key()

    def create(self) -> None:
        """Start a new key at once for the current data, invalidating the previous key."""
        self.cycle_key()

    # -- the test cookie --------------------------------------------------------------------

    def set_test_cookie(self) -> None:
        self[TEST_COOKIE_NAME] = TEST_COOKIE_VALUE

    def test_cookie_worked(self) -> bool:
        return bool(self.get(TEST_COOKIE_NAME) == TEST_COOKIE_VALUE)

    def delete_test_cookie(self) -> None:
        del self[TEST_COOKIE_NAME]

    # -- expiry -------------------------------------------------------------------------

    def set_expiry(self, value: int | dt.timedelta | dt.datetime | None) -> None:
        """Seconds (0 = browser close, negative = already expired), timedelta, aware
        datetime, or None for the middleware's default; at most ten years either way."""
        expiry = expiry_from_value(value, time.time())
        if self._pending is not None:
            self._resolve()
        if self._guard is not None and self._key is None:
            raise RuntimeError(self._guard)
        self._expiry = expiry
        self._expiry_changed = True
        self._modified = True

    def get_expiry_age(self) -> int:
        if self._pending is not None:
            self._resolve()
        return expiry_age(self._expiry, self._policy, time.time())

    def get_expiry_date(self) -> dt.datetime:
        if self._pending is not None:
            self._resolve()
        if self._expiry is not None and self._expiry.kind == "at":
            return to_datetime(self._expiry.value)  # exactly what set_expiry() was given
        now = time.time()
        return to_datetime(now + expiry_age(self._expiry, self._policy, now))

    def get_expire_at_browser_close(self) -> bool:
        if self._pending is not None:
            self._resolve()
        return expire_at_browser_close(self._expiry, self._policy)

    # -- what the lifecycle reads (no I/O, nothing public) --------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the data is here (a lazily loaded session is not, until first used)."""
        return self._pending is None

    @property
    def loaded_key(self) -> str | None:
        """The key of the stored record this request began from."""
        return self._loaded_key

    @property
    def rotated(self) -> bool:
        """The request began from a record whose key is no longer current."""
        return self._loaded_key is not None and self._key != self._loaded_key

    @property
    def created_at(self) -> float | None:
        return self._created_at

    @property
    def expiry(self) -> Expiry | None:
        return self._expiry

    @property
    def expiry_changed(self) -> bool:
        return self._expiry_changed

    @property
    def cleared(self) -> bool:
        return self._cleared

    @property
    def flagged(self) -> bool:
        """``modified`` was set by the app itself: values read may have changed in place."""
        return self._flagged

    @property
    def deleted_names(self) -> frozenset[str]:
        return frozenset(self._deleted)

    def names_to_save(self, with_reads: bool) -> list[str]:
        """Keys whose values this save writes: those set, and with ``with_reads`` (an
        explicit ``modified = True``, or ``save_every_request``) those read whose values
        can change in place, so in-place edits are kept without touching other keys."""
        names = self._set
        if with_reads and self._read:
            mutable = {
                name
                for name in self._read
                if type(dict.get(self, name)) not in _IMMUTABLE and dict.__contains__(self, name)
            }
            names = names | mutable
        return [name for name in names if dict.__contains__(self, name)]

    def raw(self, name: str) -> Any:
        """A value, without marking the session accessed."""
        return dict.__getitem__(self, name)

    def raw_data(self) -> dict[str, Any]:
        """A copy of the data (decoded first if need be), without marking it accessed."""
        self.settle()
        return dict(dict.items(self))

    def raw_get(self, name: str) -> Any:
        return dict.get(self, name)

    def saved_as(self, key: str) -> None:
        """The key the response gave the session (``session_key`` is it from now on)."""
        self._key = key

    def fill(
        self,
        data: Mapping[str, Any],
        key: str,
        *,
        expiry: Expiry | None,
        created_at: float,
    ) -> None:
        """Load the stored session into this (still untouched) object."""
        dict.pop(self, _UNLOADED, None)
        dict.update(self, data)
        self._key = self._loaded_key = key
        self._expiry = expiry
        self._created_at = created_at

    def defer(self, loader: Callable[[Session], None]) -> None:
        """Run ``loader(self)`` at the first access (it calls ``fill``, or raises). It is
        given the session rather than holding it, so that no reference cycle outlives a
        request whose session was never used."""
        self._pending = loader
        dict.__setitem__(self, _UNLOADED, None)

    def resolved(self, readable: bool = True) -> None:
        """The loader has run (or was cancelled): accesses go straight to the data.
        ``readable=False``: the stored data could not be read, so the session is empty."""
        self._pending = None
        self._unreadable = not readable
        dict.pop(self, _UNLOADED, None)

    @property
    def unreadable(self) -> bool:
        """The stored data turned out unreadable when it was decoded (the lifecycle's)."""
        return self._unreadable

    def guard(self, reason: str) -> None:
        """Refuse anything that would need a new cookie (a websocket cannot send one)."""
        self._guard = reason

    def settle(self) -> None:
        """Run a pending loader now, without counting as an access (the lifecycle's)."""
        if self._pending is not None:
            self._resolve()

    def _resolve(self) -> None:
        # A loader may leave another in its place: the store's load defers decoding.
        loader = self._pending
        while loader is not None:
            loader(self)
            loader = self._pending
