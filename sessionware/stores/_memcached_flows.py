"""MemcachedStore's session operations, written once as flows (see ``_memcached_steps``).

Memcached has no transactions: every write reads the item with ``gets`` and writes it
back with ``cas``, which the server refuses if anything wrote in between; the flow then
reads again (with a jittered backoff, a bounded number of times, then
``SessionStoreError``).

Rotation and renewal span two keys. They read the old key (a live record and its CAS
token), list the new key in the user's index, write the new item with ``add``, then
``cas`` the old item into its marker. That last step decides, and until it succeeds
nobody was given the new key. If the old item changed meanwhile and is still a live
record (a concurrent delta), the ``cas`` is retried (a renewal first rewrites its new
item, by ``cas``, with the newer data); if the old key was ended (a logout, a
revocation, another rotation or renewal), the new item is deleted and the caller gets
what the old key now holds. The per-user index is in ``_memcached_index``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .._records import Change, Loaded, Moved, Record, Stale, apply_change
from .._store import Written
from ._memcached_index import IndexFlows
from ._memcached_layout import (
    ITEM_OVERHEAD,
    Entry,
    check_size,
    decode,
    decode_index,
    encode_marker,
    encode_record,
    exptime,
    index_name,
    pack_record,
)
from ._memcached_steps import Add, Cas, Delete, Flow, Get, Gets, ask


@dataclass(frozen=True, slots=True)
class _Held:
    """A live record read for writing, with its CAS token."""

    record: Record
    generation: str | None
    token: int


class Flows(IndexFlows):
    """Every operation of one store."""

    __slots__ = ()

    # -- reading ---------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Flow[Loaded]:
        entry = decode((yield from ask(Get(self.name(key)))))
        return (yield from self._live(entry, now))

    def _live(self, entry: Entry | None, now: float) -> Flow[Loaded]:
        """What ``entry`` is at ``now``: a live record or marker, or ``None``."""
        if entry is None:
            return None
        value = entry.value
        if isinstance(value, Record):
            if value.expires_at <= now:
                return None
            if value.user is not None:
                index = decode_index((yield from ask(Get(index_name(self.prefix, value.user)))))
                if index is None or index.generation != entry.generation:
                    return None  # the user's index is gone, and its sessions with it
            return value
        return value if value.until > now else None

    def _hold(self, name: bytes, now: float) -> Flow[_Held | Written]:
        """The live record under ``name`` with its token, or what a write there returns."""
        got = yield from ask(Gets(name))
        if got is None:
            return False
        entry = decode(got[0])
        live = yield from self._live(entry, now)
        if isinstance(live, Record) and entry is not None:
            return _Held(live, entry.generation, got[1])
        return live if isinstance(live, Moved) else False

    # -- writing one key -------------------------------------------------------------------

    def insert(self, key: str, record: Record) -> Flow[bool]:
        name, blob = self.name(key), pack_record(record)
        self.check(name, record, blob)
        generation = None
        if record.user is not None:
            generation = yield from self.index_add(record.user, key)
        value = encode_record(record, generation, blob)
        now = time.time()
        return (yield from self._put_new(name, value, exptime(record.expires_at, now), now))

    def update(self, key: str, change: Change, now: float) -> Flow[Written]:
        name = self.name(key)
        indexed: dict[str, str] = {}  # a user this change brings -> its index generation
        for attempt in range(self.attempts):
            held = yield from self._hold(name, now)
            if not isinstance(held, _Held):
                return held
            try:
                merged = apply_change(held.record, change, now)
            except ValueError:  # stored fields that do not unpack: nothing to update
                return False
            blob = pack_record(merged)
            generation = held.generation
            if merged.user != held.record.user:
                generation = None
                if merged.user is not None:
                    if merged.user not in indexed:
                        self.check(name, merged, blob)
                        indexed[merged.user] = yield from self.index_add(merged.user, key)
                    generation = indexed[merged.user]
            value = encode_record(merged, generation, blob)
            check_size(len(name) + len(value) + ITEM_OVERHEAD, self.max_item_bytes)
            expires = exptime(merged.expires_at, time.time())
            if (yield from ask(Cas(name, value, expires, held.token))):
                return True
            yield from self.pause(attempt)
        raise self.gave_up("update")

    def delete(self, key: str, now: float, stale_until: float) -> Flow[Written]:
        name, marker = self.name(key), encode_marker(Stale(stale_until))
        for attempt in range(self.attempts):
            held = yield from self._hold(name, now)
            if not isinstance(held, _Held):
                return held
            expires = exptime(stale_until, time.time())
            if (yield from ask(Cas(name, marker, expires, held.token))):
                return True
            yield from self.pause(attempt)
        raise self.gave_up("delete")

    def _put_new(self, name: bytes, value: bytes, expires: int, now: float) -> Flow[bool]:
        """Write where nothing live is: ``add``, or ``cas`` over a dead item."""
        for attempt in range(self.attempts):
            if (yield from ask(Add(name, value, expires))):
                return True
            got = yield from ask(Gets(name))
            if got is not None:
                if (yield from self._live(decode(got[0]), now)) is not None:
                    return False
                if (yield from ask(Cas(name, value, expires, got[1]))):
                    return True
            yield from self.pause(attempt)
        raise self.gave_up("insert")

    # -- writing two keys: rotation and renewal --------------------------------------------

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Flow[Written]:
        name, new_name = self.name(key), self.name(new_key)
        held = yield from self._hold(name, now)
        if not isinstance(held, _Held):
            return held
        blob = pack_record(record)
        self.check(new_name, record, blob)
        generation = None
        if record.user is not None:
            generation = yield from self.index_add(record.user, new_key)
        value = encode_record(record, generation, blob)
        expires = exptime(record.expires_at, time.time())
        if not (yield from self._put_new(new_name, value, expires, now)):
            return False
        marker = encode_marker(Stale(stale_until))
        for attempt in range(self.attempts):
            expires = exptime(stale_until, time.time())
            if (yield from ask(Cas(name, marker, expires, held.token))):
                return True
            again = yield from self._hold(name, now)
            if not isinstance(again, _Held):
                yield Delete(new_name)  # nobody was given the new key: take it back
                return again
            held = again
            yield from self.pause(attempt)
        yield Delete(new_name)
        raise self.gave_up("rotate")

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Flow[Written]:
        name, new_name = self.name(key), self.name(new_key)
        held = yield from self._hold(name, now)
        if not isinstance(held, _Held):
            return held
        pointer = encode_marker(Moved(new_key, grace_until))
        indexed: dict[str, str] = {}
        written = False
        for attempt in range(self.attempts):
            old = held.record
            moved = Record(
                old.fields, old.created_at, old.expires_at, old.expiry, now, now, old.user
            )
            blob = pack_record(moved)
            self.check(new_name, moved, blob)
            if moved.user is not None and moved.user not in indexed:
                indexed[moved.user] = yield from self.index_add(moved.user, new_key)
            generation = None if moved.user is None else indexed[moved.user]
            value = encode_record(moved, generation, blob)
            expires = exptime(moved.expires_at, time.time())
            if written:  # the old record changed: the new one takes its newer data
                rewritten = yield from self._rewrite(new_name, value, expires, now)
                if rewritten is None:
                    break  # gave up: the new key goes, below
                if not rewritten:
                    return False  # a revocation ended the new key, and so the old one
            elif not (yield from self._put_new(new_name, value, expires, now)):
                return False
            written = True
            if (yield from ask(Cas(name, pointer, exptime(grace_until, time.time()), held.token))):
                return True
            again = yield from self._hold(name, now)
            if not isinstance(again, _Held):
                yield Delete(new_name)  # another renewal, a logout or a revocation won
                return again
            held = again
            yield from self.pause(attempt)
        yield Delete(new_name)
        raise self.gave_up("renew")

    def _rewrite(self, name: bytes, value: bytes, expires: int, now: float) -> Flow[bool | None]:
        """Replace this renewal's own unpublished record; ``False`` if it was ended,
        ``None`` if every attempt lost its ``cas`` (the caller removes it and gives up)."""
        for attempt in range(self.attempts):
            got = yield from ask(Gets(name))
            if got is None:  # evicted before anyone saw it
                return (yield from self._put_new(name, value, expires, now))
            entry = decode(got[0])
            if entry is None or not isinstance(entry.value, Record):
                return False
            if (yield from ask(Cas(name, value, expires, got[1]))):
                return True
            yield from self.pause(attempt)
        return None
