"""MemcachedStore's per-user index: one item per user, listing that user's keys.

- A key is listed before its record is written (``index_add``), so every live record of
  the user is listed. Listings re-read each record and keep those of the user; entries
  that hold nothing live are pruned once older than ``INDEX_GRACE`` (a younger one may
  belong to a write still on its way).
- A revocation ``cas``-es each listed key holding a live record of the user into a
  ``Stale`` marker, atomically with respect to that key's other writes, and ``add``-s a
  ``Stale`` marker on a key listed lately but not written yet, so the login or renewal
  still on its way fails instead of escaping. It reads the index again until it lists
  no key it has not seen: a rotation or renewal that ended a listed key first listed
  its new key, which the next pass ends.
- Memcached may evict the index item. Each record carries the *generation* its index
  item was created with and counts as live only while that item holds it (see
  ``Flows.load``): an evicted index takes its user's sessions with it, rather than
  leaving sessions no revocation can find.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .._keys import info_id
from .._records import Record, SessionInfo, Stale, newest_first, session_info
from .._store import Progress
from ._memcached_layout import (
    Entry,
    Index,
    decode,
    decode_index,
    encode_index,
    encode_marker,
    exptime,
    index_name,
    is_index_name,
    new_generation,
)
from ._memcached_steps import (
    Add,
    Cas,
    DeleteIf,
    Flow,
    FlowsBase,
    Get,
    GetMany,
    Gets,
    GetsMany,
    ask,
)

#: An index entry younger than this is never pruned: its record may still be on its way.
INDEX_GRACE = 300.0
#: An index with more entries than this drops its dead ones when a key is added.
PRUNE_AT = 64
#: How many times a revocation reads the index again for keys listed during its pass.
_REVOKE_PASSES = 20
_SWEEP_BATCH = 100

# What a revocation found under a listed key: a record it ended, an empty key it blocked
# with a marker, a record of the user it kept (alive, though dead at the caller's clock),
# or nothing of the user's.
_ENDED, _BLOCKED, _KEPT, _NOTHING = "ended", "blocked", "kept", "nothing"


class IndexFlows(FlowsBase):
    """The per-user index, and the sweep of dead items."""

    __slots__ = ()

    def index_add(self, user: str, key: str) -> Flow[str]:
        """List ``key`` under ``user`` (before its record is written); the generation."""
        name = index_name(self.prefix, user)
        for attempt in range(self.attempts):
            got = yield from ask(Gets(name))
            clock = time.time()
            if got is None:
                index = Index(user, new_generation(), {key: clock})
                if (yield from ask(Add(name, self._index_value(name, index), 0))):
                    return index.generation
                continue
            found = decode_index(got[0])
            if found is None or found.user != user:  # unreadable: its sessions go with it
                found = Index(user, new_generation(), {})
            keys = found.keys | {key: clock}
            if len(keys) > PRUNE_AT:
                gone = yield from self._prunable(Index(user, found.generation, keys), clock)
                keys = {k: t for k, t in keys.items() if k not in gone}
            value = self._index_value(name, Index(user, found.generation, keys))
            if (yield from ask(Cas(name, value, 0, got[1]))):
                return found.generation
            yield from self.pause(attempt)
        raise self.gave_up("index")

    def user_sessions(self, user: str, now: float) -> Flow[list[SessionInfo]]:
        name = index_name(self.prefix, user)
        index = decode_index((yield from ask(Get(name))))
        if index is None or index.user != user:
            return []
        records = yield from self._records(index)
        infos = [
            session_info(info_id(key), record)
            for key, record in records.items()
            if record is not None and record.expires_at > now
        ]
        gone = self._dead_entries(index, records, time.time())
        if gone:
            yield from self._index_drop(name, gone)
        return newest_first(infos)

    def revoke(
        self, user: str, chosen: Callable[[str], bool], now: float, until: float
    ) -> Flow[int]:
        """End the user's live sessions whose key is ``chosen``; how many were ended.

        The index is read again after each pass until it lists no key not seen yet: a
        rotation or renewal that ended a key before the pass reached it had listed its
        new key first, so the next pass finds that key and ends it.
        """
        name = index_name(self.prefix, user)
        ended, seen = 0, set()
        for _ in range(_REVOKE_PASSES):
            index = decode_index((yield from ask(Get(name))))
            if index is None or index.user != user:
                break
            fresh = {k: t for k, t in index.keys.items() if k not in seen and chosen(k)}
            if not fresh:
                break
            clock, gone = time.time(), {}
            for key, added in fresh.items():
                seen.add(key)
                young = clock - added <= INDEX_GRACE
                outcome = yield from self._end_listed(key, index, now, until, young)
                ended += outcome == _ENDED
                if outcome in (_ENDED, _BLOCKED) or (outcome == _NOTHING and not young):
                    gone[key] = added
            if gone:
                yield from self._index_drop(name, gone)
        return ended

    def _end_listed(
        self, key: str, index: Index, now: float, until: float, young: bool
    ) -> Flow[str]:
        name, marker = self.name(key), encode_marker(Stale(until))
        for attempt in range(self.attempts):
            clock = time.time()
            got = yield from ask(Gets(name))
            if got is None:
                if not young:
                    return _NOTHING
                if (yield from ask(Add(name, marker, exptime(until, clock)))):
                    return _BLOCKED  # a write still on its way will find the marker
                continue
            record = _of_index(decode(got[0]), index)
            if record is None or record.expires_at <= now:
                return _KEPT if record is not None and record.expires_at > clock else _NOTHING
            if (yield from ask(Cas(name, marker, exptime(until, clock), got[1]))):
                return _ENDED
            yield from self.pause(attempt)
        raise self.gave_up("revoke")

    def _records(self, index: Index) -> Flow[dict[str, Record | None]]:
        """Each listed key's record if it is one of this index (dead or alive), else None."""
        names = {key: self.name(key) for key in index.keys}
        values = (yield from ask(GetMany(list(names.values())))) if names else {}
        return {key: _of_index(decode(values.get(names[key])), index) for key in names}

    def _prunable(self, index: Index, clock: float) -> Flow[dict[str, float]]:
        old = {k: t for k, t in index.keys.items() if clock - t > INDEX_GRACE}
        if not old:
            return {}
        records = yield from self._records(Index(index.user, index.generation, old))
        return self._dead_entries(index, records, clock)

    @staticmethod
    def _dead_entries(
        index: Index, records: dict[str, Record | None], clock: float
    ) -> dict[str, float]:
        """Entries older than the grace whose key holds no live record of the index."""
        return {
            key: added
            for key, added in index.keys.items()
            if clock - added > INDEX_GRACE
            and ((record := records.get(key)) is None or record.expires_at <= clock)
        }

    def _index_drop(self, name: bytes, gone: dict[str, float]) -> Flow[None]:
        """Remove entries (unless re-added since); best effort: a later listing retries."""
        for _ in range(3):
            got = yield from ask(Gets(name))
            index = None if got is None else decode_index(got[0])
            if got is None or index is None:
                return
            keys = {k: t for k, t in index.keys.items() if gone.get(k) != t}
            if len(keys) == len(index.keys):
                return
            # An empty index lingers a while (a login may be adding to it), then goes.
            expires = 0 if keys else exptime(time.time() + INDEX_GRACE, time.time())
            value = self._index_value(name, Index(index.user, index.generation, keys))
            if (yield from ask(Cas(name, value, expires, got[1]))):
                return

    def _index_value(self, name: bytes, index: Index) -> bytes:
        return encode_index(index, name, self.max_item_bytes)

    # -- sweeping (sync only: the caller lists the names) ------------------------------------

    def sweep(self, names: list[bytes], now: float, progress: Progress | None = None) -> Flow[int]:
        """Remove the items among ``names`` dead at ``now``, prune the indexes among them;
        ``progress`` hears the items removed so far after each batch."""
        indexes = [name for name in names if is_index_name(self.prefix, name)]
        sessions = [name for name in names if not is_index_name(self.prefix, name)]
        removed = 0
        for start in range(0, len(sessions), _SWEEP_BATCH):
            batch = yield from ask(GetsMany(sessions[start : start + _SWEEP_BATCH]))
            for name, (value, token) in batch.items():
                entry = decode(value)
                if entry is not None and _until(entry) <= now:
                    removed += bool((yield from ask(DeleteIf(name, token))))
            if progress is not None:
                progress(removed)
        for name in indexes:
            index = decode_index((yield from ask(Get(name))))
            if index is not None:
                gone = yield from self._prunable(index, time.time())
                if gone:
                    yield from self._index_drop(name, gone)
        if progress is not None:
            progress(removed)
        return removed

    def count_dead(self, names: list[bytes], now: float) -> Flow[int]:
        """How many session items among ``names`` a sweep at ``now`` would remove."""
        sessions = [name for name in names if not is_index_name(self.prefix, name)]
        dead = 0
        for start in range(0, len(sessions), _SWEEP_BATCH):
            batch = yield from ask(GetsMany(sessions[start : start + _SWEEP_BATCH]))
            for value, _token in batch.values():
                entry = decode(value)
                dead += entry is not None and _until(entry) <= now
        return dead


def _of_index(entry: Entry | None, index: Index) -> Record | None:
    """The entry's record if it belongs to ``index`` (same user, same generation)."""
    if entry is None or not isinstance(entry.value, Record):
        return None
    record = entry.value
    if record.user != index.user or entry.generation != index.generation:
        return None
    return record


def _until(entry: Entry) -> float:
    value = entry.value
    return value.expires_at if isinstance(value, Record) else value.until
