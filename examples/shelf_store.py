"""A session store written outside sessionware, as its docs' "Writing a store" describes.

Sessions live in a ``shelve`` file (one process; dbm files are not safe to share between
processes). The recipe: subclass ``SessionStore``, implement its sync methods (the async
twins then default to one thread hop each), and check the store with the conformance
kit, as ``tests/test_example_store.py`` does in a few lines.

Concurrency: one lock around every operation, so each is atomic: a save applies its
delta to the record as it is now (``apply_change``), a key that was ended holds a
``Stale`` marker that no later write replaces, and of two rotations or renewals of one
key only the first finds a live record. Expiry: entries past their time read as absent
and ``clear_expired`` removes them. The per-user listings read every entry: fine for a
small store; a large one would keep an index.

``BlindShelfStore`` below shows the classic mistake the kit catches.
"""

from __future__ import annotations

import shelve
import threading
import time
from os import PathLike

from sessionware.stores.base import (
    DEFAULT_STALE_WINDOW,
    Change,
    Loaded,
    Moved,
    Progress,
    Record,
    SessionInfo,
    SessionStore,
    Stale,
    Written,
    apply_change,
    info_id,
    newest_first,
    now_or,
    session_info,
    user_text,
)

Entry = Record | Stale | Moved


class ShelfStore(SessionStore):
    """Sessions in a ``shelve`` file, one lock around every operation."""

    def __init__(self, path: str | PathLike[str]) -> None:
        self._shelf: shelve.Shelf[Entry] = shelve.open(str(path))  # noqa: SIM115 - kept open
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> Loaded:
        """The entry under ``key`` unless it has expired (then it is dropped)."""
        entry = self._shelf.get(key)
        if entry is None:
            return None
        until = entry.expires_at if isinstance(entry, Record) else entry.until
        if until <= now:
            del self._shelf[key]
            return None
        return entry

    def _end(self, key: str, now: float, marker: Stale | Moved) -> None:
        if marker.until > now:
            self._shelf[key] = marker
        else:
            del self._shelf[key]

    def load(self, key: str, now: float) -> Loaded:
        with self._lock:
            return self._live(key, now)

    def insert(self, key: str, record: Record) -> bool:
        with self._lock:
            if self._live(key, time.time()) is not None:
                return False
            self._shelf[key] = record
        return True

    def update(self, key: str, change: Change, now: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            self._shelf[key] = apply_change(entry, change, now)
        return True

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            self._end(key, now, Stale(stale_until))
        return True

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            if self._live(new_key, now) is not None:
                return False
            self._end(key, now, Stale(stale_until))
            self._shelf[new_key] = record
        return True

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            if self._live(new_key, now) is not None:
                return False
            self._end(key, now, Moved(new_key, grace_until))
            self._shelf[new_key] = Record(
                entry.fields,
                entry.created_at,
                entry.expires_at,
                entry.expiry,
                key_at=now,
                updated_at=now,
                user=entry.user,
            )
        return True

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        moment = now_or(now)
        with self._lock:
            before = len(self._shelf)
            for key in list(self._shelf):
                self._live(key, moment)
            removed = before - len(self._shelf)
        if progress is not None:  # one step here; a store purging in batches reports each
            progress(removed)
        return removed

    def count_expired(self, now: float | None = None) -> int:
        moment = now_or(now)
        with self._lock:
            return sum(
                (entry.expires_at if isinstance(entry, Record) else entry.until) <= moment
                for entry in self._shelf.values()
            )

    def close(self) -> None:
        with self._lock:
            self._shelf.close()

    # -- the per-user index: a scan of every entry --------------------------------------------

    def _sessions_of(self, user_id: str | int, now: float) -> list[tuple[str, Record]]:
        user = user_text(user_id)
        found = []
        for key in list(self._shelf):
            entry = self._live(key, now)
            if isinstance(entry, Record) and entry.user == user:
                found.append((key, entry))
        return found

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        with self._lock:
            found = self._sessions_of(user_id, now_or(now))
        return newest_first([session_info(info_id(key), record) for key, record in found])

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        moment = now_or(now)
        with self._lock:
            for key, _ in self._sessions_of(user_id, moment):
                if info_id(key) == session_id:
                    self._end(key, moment, Stale(moment + stale_for))
                    return True
        return False

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        moment = now_or(now)
        with self._lock:
            ended = [key for key, _ in self._sessions_of(user_id, moment) if key != except_key]
            for key in ended:
                self._end(key, moment, Stale(moment + stale_for))
        return len(ended)


class BlindShelfStore(ShelfStore):
    """The classic mistake: a save reads the record, merges in Python, and writes the
    whole record back blindly. Two saves that read the same record each write their own
    merge, and the later one erases the other's keys. The kit's concurrency test fails
    on it (``tests/test_example_store.py`` checks that it does)."""

    def update(self, key: str, change: Change, now: float) -> Written:
        entry = self.load(key, now)
        if not isinstance(entry, Record):
            return entry if isinstance(entry, Moved) else False
        merged = apply_change(entry, change, now)
        time.sleep(0.001)  # the round trip a store over a network has here
        with self._lock:
            self._shelf[key] = merged  # blind: whatever was saved since is overwritten
        return True
