"""The ``Session``: Django's ``request.session`` as a mapping that records what changed.

No I/O happens here. The lifecycle reads the change set (``_set``, ``_deleted``,
``_cleared``, expiry, key rotation) at the response and turns it into store calls.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

from ._expiry import (
    Expiry,
    ExpiryPolicy,
    expire_at_browser_close,
    expiry_age,
    expiry_from_value,
    to_datetime,
)
from ._keys import new_key
from ._records import Change

TEST_COOKIE_NAME = "testcookie"
TEST_COOKIE_VALUE = "worked"

_DEFAULT_POLICY = ExpiryPolicy()


class Session(MutableMapping[str, Any]):
    """Session data for one request, with Django's semantics (see API.md §3)."""

    __slots__ = (
        "_cleared",
        "_created_at",
        "_data",
        "_deleted",
        "_expiry",
        "_expiry_changed",
        "_key",
        "_loaded_key",
        "_policy",
        "_set",
        "accessed",
        "modified",
    )

    def __init__(
        self,
        data: dict[str, Any] | None = None,
        key: str | None = None,
        *,
        expiry: Expiry | None = None,
        created_at: float | None = None,
        policy: ExpiryPolicy = _DEFAULT_POLICY,
    ) -> None:
        self._data: dict[str, Any] = {} if data is None else data
        self._key = key
        self._loaded_key = key  # the stored record this request started from
        self._expiry = expiry
        self._created_at = created_at
        self._policy = policy
        self._set: dict[str, Any] = {}
        self._deleted: set[str] = set()
        self._cleared = False
        self._expiry_changed = False
        self.accessed = False
        self.modified = False

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.accessed = self.modified = True
        self._data[key] = value
        self._set[key] = value
        self._deleted.discard(key)

    def __delitem__(self, key: str) -> None:
        self.accessed = True
        del self._data[key]
        self._set.pop(key, None)
        self._deleted.add(key)
        self.modified = True

    def __contains__(self, key: object) -> bool:
        self.accessed = True
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        self.accessed = True
        return iter(list(self._data))

    def __len__(self) -> int:
        self.accessed = True
        return len(self._data)

    def __repr__(self) -> str:
        return f"<Session keys={sorted(self._data)!r}>"

    def get(self, key: str, default: Any = None) -> Any:
        self.accessed = True
        return self._data.get(key, default)

    _MISSING: Any = object()

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        self.accessed = True
        if key in self._data:
            value = self._data[key]
            del self[key]
            return value
        if default is self._MISSING:
            raise KeyError(key)
        return default

    def clear(self) -> None:
        """Drop all data but keep the key (Django: the session is saved, empty)."""
        self.accessed = self.modified = True
        self._data.clear()
        self._set.clear()
        self._deleted.clear()
        self._cleared = True

    # -- key lifecycle ------------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """The current key; ``None`` until the session has (or is about to get) a record."""
        return self._key

    def is_empty(self) -> bool:
        """No data, no key, no custom expiry (after ``clear()`` the key remains).

        A custom expiry counts as content, as in Django where it lives in the data.
        """
        return self._key is None and not self._data and self._expiry is None

    def flush(self) -> None:
        """Log out: drop data and key; the old record is deleted at the response."""
        self.accessed = self.modified = True
        self._data.clear()
        self._set.clear()
        self._deleted.clear()
        self._cleared = True
        self._key = None
        self._expiry = None
        self._expiry_changed = True
        self._created_at = None

    def cycle_key(self) -> None:
        """Keep the data under a new key, generated now; the old record goes at the response."""
        self.modified = True
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
        """Seconds (0 = browser close), timedelta, aware datetime, or None for the default."""
        self._expiry = expiry_from_value(value, time.time())
        self._expiry_changed = True
        self.modified = True

    def get_expiry_age(self) -> int:
        return expiry_age(self._expiry, self._policy, time.time())

    def get_expiry_date(self) -> dt.datetime:
        if self._expiry is not None and self._expiry.kind == "at":
            return to_datetime(self._expiry.value)  # exactly what set_expiry() was given
        now = time.time()
        return to_datetime(now + expiry_age(self._expiry, self._policy, now))

    def get_expire_at_browser_close(self) -> bool:
        return expire_at_browser_close(self._expiry, self._policy)

    # -- for the lifecycle ---------------------------------------------------------------

    @property
    def rotated(self) -> bool:
        """The request started from a record whose key is no longer current."""
        return self._loaded_key is not None and self._key != self._loaded_key

    def change(self, expires_at: float) -> Change:
        """The delta this request made, for ``update`` on the record it loaded."""
        return Change(
            set=self._set,
            deleted=frozenset(self._deleted),
            cleared=self._cleared,
            expiry_changed=self._expiry_changed,
            expiry=self._expiry,
            expires_at=expires_at,
        )
