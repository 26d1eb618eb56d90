"""``MemoryStore``: sessions in a dict of this process, for development, tests, one worker."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import ClassVar

from .._keys import info_id
from .._records import (
    Change,
    KeptFields,
    Loaded,
    Moved,
    Record,
    SessionInfo,
    Stale,
    apply_change,
    kept_fields,
    newest_first,
    session_info,
)
from .._store import (
    DEFAULT_STALE_WINDOW,
    Finding,
    Progress,
    SessionStore,
    Written,
    now_or,
    user_text,
)

# Expired entries a write evicts from the cold end of the LRU order (see ``insert``).
_SWEEP_PER_WRITE = 2

_Entry = Record | Stale | Moved


def _until(entry: _Entry) -> float:
    return entry.expires_at if isinstance(entry, Record) else entry.until


class MemoryStore(SessionStore):
    """Sessions in this process's memory; lost on restart and not shared between workers.

    Data: the store keeps the serializer's bytes (``Record.fields``), like every other
    store, so a value that would fail or change type in production fails or changes the
    same way here. Records are immutable and replaced whole on every write, so a load
    hands out the stored record without copying it.

    Concurrency: one ``threading.Lock`` guards the table and the per-user index; every
    operation is a short critical section with no I/O, so deltas apply atomically, and a
    key that was ended (flushed, rotated, revoked) is never written again. The async
    twins call the sync methods directly: a thread hop would cost ~60-95 µs for
    sub-microsecond work, and the lock is never held long enough to stall the loop.

    Expiry: an expired record or marker is never returned; it is evicted when touched, by
    ``clear_expired()``, and each insert also evicts up to two expired entries from the
    least recently used end, so a process that never purges does not fill up.

    Memory: with ``max_entries`` the table never holds more entries (sessions and the
    short-lived markers of ended keys); the least recently used goes first, in O(1).
    """

    #: Each process has its own table.
    shared: ClassVar[bool] = False
    #: Loads hand out the stored record itself, so its fields can remember their decode.
    keeps_objects: ClassVar[bool] = True

    def __init__(self, max_entries: int | None = None) -> None:
        if max_entries is not None and (
            isinstance(max_entries, bool) or not isinstance(max_entries, int)
        ):
            raise TypeError(f"max_entries must be an int or None, not {max_entries!r}")
        if max_entries is not None and max_entries < 1:
            raise ValueError(f"max_entries must be positive, not {max_entries}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._users: dict[str, set[str]] = {}

    # -- the operations --------------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        with self._lock:
            entry = self._live(key, now)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def insert(self, key: str, record: Record) -> bool:
        now = time.time()
        with self._lock:
            if self._live(key, now) is not None:
                return False
            self._sweep_cold_end(now)
            self._put(key, _owned(record))
        return True

    def update(self, key: str, change: Change, now: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            self._put(key, apply_change(entry, change, now))
        return True

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            self._end(key, now, stale_until)
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
            self._end(key, now, stale_until)
            self._put(new_key, _owned(record))
        return True

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        with self._lock:
            entry = self._live(key, now)
            if not isinstance(entry, Record):
                return entry if isinstance(entry, Moved) else False
            if self._live(new_key, now) is not None:
                return False
            moved = Record(
                entry.fields,
                entry.created_at,
                entry.expires_at,
                entry.expiry,
                key_at=now,
                updated_at=now,
                user=entry.user,
            )
            self._end(key, now, grace_until, Moved(new_key, grace_until))
            self._put(new_key, moved)
        return True

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        now = now_or(now)
        with self._lock:
            dead = [key for key, entry in self._entries.items() if _until(entry) <= now]
            for key in dead:
                self._drop(key)
        if progress is not None:  # one step: the whole purge is one critical section
            progress(len(dead))
        return len(dead)

    def count_expired(self, now: float | None = None) -> int:
        now = now_or(now)
        with self._lock:
            return sum(_until(entry) <= now for entry in self._entries.values())

    def check(self) -> list[Finding]:
        now = time.time()
        with self._lock:
            live = sum(isinstance(e, Record) and e.expires_at > now for e in self._entries.values())
        bound = "no limit" if self.max_entries is None else f"at most {self.max_entries}"
        return [
            ("store", "memory of this process (other processes see none of it)"),
            ("entries", f"{len(self._entries)} ({bound})"),
            ("sessions", f"{live} live"),
        ]

    # -- the per-user index -----------------------------------------------------------------

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        now = now_or(now)
        with self._lock:
            live = [
                (key, entry)
                for key in list(self._users.get(user_text(user_id), ()))
                if isinstance(entry := self._live(key, now), Record)
            ]
        return newest_first([session_info(info_id(key), record) for key, record in live])

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        now = now_or(now)
        with self._lock:
            for key in list(self._users.get(user_text(user_id), ())):
                if info_id(key) == session_id and isinstance(self._live(key, now), Record):
                    self._end(key, now, now + stale_for)
                    return True
        return False

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        now = now_or(now)
        ended = 0
        with self._lock:
            for key in list(self._users.get(user_text(user_id), ())):
                if key != except_key and isinstance(self._live(key, now), Record):
                    self._end(key, now, now + stale_for)
                    ended += 1
        return ended

    # -- the table (lock held) ---------------------------------------------------------------

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if _until(entry) <= now:
            self._drop(key)
            return None
        return entry

    def _put(self, key: str, entry: _Entry) -> None:
        old = self._entries.get(key)
        if isinstance(old, Record) and old.user is not None:
            self._unindex(old.user, key)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        if isinstance(entry, Record) and entry.user is not None:
            self._users.setdefault(entry.user, set()).add(key)
        if self.max_entries is not None:
            while len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))

    def _end(self, key: str, now: float, until: float, marker: _Entry | None = None) -> None:
        """The live record under ``key`` is over: a marker (stale, or ``marker``) takes its
        place until ``until``, or nothing when that is not in the future."""
        if until > now:
            self._put(key, marker if marker is not None else Stale(until))
        else:
            self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if isinstance(entry, Record) and entry.user is not None:
            self._unindex(entry.user, key)

    def _unindex(self, user: str, key: str) -> None:
        keys = self._users.get(user)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._users[user]

    def _sweep_cold_end(self, now: float) -> None:
        """Evict a few expired entries at the least recently used end."""
        for _ in range(_SWEEP_PER_WRITE):
            oldest = next(iter(self._entries.items()), None)
            if oldest is None or _until(oldest[1]) > now:
                return
            self._drop(oldest[0])

    # -- async twins: the work is too small for a thread hop ---------------------------------

    async def aload(self, key: str, now: float) -> Loaded:
        return self.load(key, now)

    async def ainsert(self, key: str, record: Record) -> bool:
        return self.insert(key, record)

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        return self.update(key, change, now)

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        return self.delete(key, now, stale_until)

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return self.rotate(key, new_key, record, now, stale_until)

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return self.renew(key, new_key, now, grace_until)

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        return self.clear_expired(now, progress)

    async def acount_expired(self, now: float | None = None) -> int:
        return self.count_expired(now)

    async def acheck(self) -> list[Finding]:
        return self.check()

    async def aclose(self) -> None:
        self.close()

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        return self.user_sessions(user_id, now)

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        return self.revoke_session(user_id, session_id, now, stale_for)

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return self.revoke_user(user_id, except_key, now, stale_for)


def _owned(record: Record) -> Record:
    """The record with a fields dict of its own: the caller may keep using theirs."""
    fields = record.fields
    return Record(
        kept_fields(fields, fields.decoded if isinstance(fields, KeptFields) else None),
        record.created_at,
        record.expires_at,
        record.expiry,
        record.key_at,
        record.updated_at,
        record.user,
    )
