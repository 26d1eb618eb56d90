"""RedisStore's operations, written once as flows and driven by a sync or an async client.

A flow is a generator that yields the Redis step it needs (a script call, a listing, a
pipelined read) and receives the step's reply; ``_redis_io`` performs the steps.

Two topologies. On one server (``per_slot=False``) every write is one script that also
keeps the per-user index, and ``revoke_user`` ends all of a user's sessions in one
script, so a rotation racing it cannot escape. Under Redis Cluster a script may only
touch one hash slot, and a session, its successor and the user's index live in
different slots, so each write is split into one script per slot (``per_slot=True``):

- the index entry is added *before* the session is written, so a live session of a user
  is always listed (entries of sessions that ended or never got written are tolerated:
  every listing re-reads each hash, and prunes what is dead);
- a rotation writes the new key first (only if it is free), then ends the old one; a
  renewal first claims the new key with a marker (only if it is free), then turns the
  old key into its pointer (the one renewal that does wins), then fills the new key. If
  the old key was not live, the new key is freed again, so a rotation or a renewal onto
  a taken key, or of an ended one, writes nothing (and a pointer never leads to another
  session);
- ``revoke_user`` lists the index until it stops growing, ends each session, follows
  pointers, and leaves a stale marker on listed keys not written yet, so a login or a
  renewal still on its way lands on a marker and fails.

What the per-slot way gives up: between the steps of a renewal (one round trip) a
request on the old key follows its pointer to a key not filled yet (and loads nothing);
a process that dies between the steps of a rotation leaves two live copies (the old one
until it expires), and one that dies between those of a renewal loses that session.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .._errors import SessionStoreError
from .._keys import info_id
from .._records import Change, Moved, Record, SessionInfo, newest_first, session_info
from .._store import Written
from . import _redis_scripts as lua
from ._redis_layout import (
    LISTED,
    Arg,
    index_name,
    index_user,
    listed,
    pexpireat,
    record_pairs,
    renewed_pairs,
    text,
    update_args,
    written,
)

T = TypeVar("T")

#: A dead index entry is pruned only if it was (re)added longer ago than this, so an
#: entry added just before its session is written (Cluster) is never lost.
INDEX_GRACE = 300.0
#: How often ``revoke_user`` re-reads an index that changed under it (one server).
_REVOKE_TRIES = 20
#: How many renewal pointers a revocation follows.
_HOPS = 4
#: How long a renewal's claim on its new key lasts if the renewal never finishes.
CLAIM_FOR = 60.0


@dataclass(frozen=True, slots=True)
class Load:
    """One session hash, whole (``HGETALL``): a load."""

    name: bytes


@dataclass(frozen=True, slots=True)
class Eval:
    """One script call (``EVALSHA``)."""

    script: lua.Script
    keys: list[bytes]
    args: list[Arg]


@dataclass(frozen=True, slots=True)
class EvalEach:
    """One script on many keys; pipelined on one server."""

    script: lua.Script
    calls: list[tuple[list[bytes], list[Arg]]]


@dataclass(frozen=True, slots=True)
class Members:
    """The members of a user's index (``ZRANGE``)."""

    index: bytes


@dataclass(frozen=True, slots=True)
class Metas:
    """``HMGET fields`` of many hashes, pipelined; a failed read is an exception value."""

    names: list[bytes]
    fields: tuple[bytes, ...]


Step = Load | Eval | EvalEach | Members | Metas
Flow = Generator[Step, Any, T]


class Flows:
    """The operations of one store on one topology."""

    __slots__ = ("_scripted", "per_slot", "prefix")

    def __init__(self, prefix: bytes, per_slot: bool) -> None:
        self.prefix = prefix
        self.per_slot = per_slot
        # The header's prefix: empty tells the scripts to leave the index alone.
        self._scripted = b"" if per_slot else prefix

    def name(self, key: str) -> bytes:
        return self.prefix + key.encode("utf-8", "surrogatepass")

    def _index_add(self, user: str, key: str) -> Eval:
        return Eval(lua.INDEX_ADD, [index_name(self.prefix, user)], [key])

    # -- session writes --------------------------------------------------------------------

    def insert(self, key: str, record: Record) -> Flow[bool]:
        if self.per_slot and record.user is not None:
            yield self._index_add(record.user, key)
        args: list[Arg] = [time.time(), self._scripted, pexpireat(record.expires_at)]
        return _done((yield Eval(lua.INSERT, [self.name(key)], args + record_pairs(record))))

    def update(self, key: str, change: Change, now: float) -> Flow[Written]:
        if self.per_slot and change.user_changed and change.user is not None:
            yield self._index_add(change.user, key)
        args: list[Arg] = [now, self._scripted, *update_args(change, now)]
        return written((yield Eval(lua.UPDATE, [self.name(key)], args)))

    def delete(self, key: str, now: float, stale_until: float) -> Flow[Written]:
        args: list[Arg] = [now, self._scripted, stale_until, pexpireat(stale_until)]
        return written((yield Eval(lua.DELETE, [self.name(key)], args)))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Flow[Written]:
        old, new = self.name(key), self.name(new_key)
        end: list[Arg] = [now, self._scripted, stale_until, pexpireat(stale_until)]
        start = [pexpireat(record.expires_at), *record_pairs(record)]
        if not self.per_slot:
            return written((yield Eval(lua.ROTATE, [old, new], end + start)))
        if record.user is not None:
            yield self._index_add(record.user, new_key)
        if not _done((yield Eval(lua.INSERT, [new], [now, b"", *start]))):
            return False  # taken: the old key stays as it is
        ended = written((yield Eval(lua.DELETE, [old], end)))
        if ended is not True:
            yield Eval(lua.UNCLAIM, [new], [now, b""])
        return ended

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Flow[Written]:
        old, new = self.name(key), self.name(new_key)
        args: list[Arg] = [now, self._scripted, grace_until, pexpireat(grace_until), new_key]
        if not self.per_slot:
            return written((yield Eval(lua.RENEW, [old, new], args)))
        claim_until = now + CLAIM_FOR
        claim: list[Arg] = [now, b"", claim_until, pexpireat(claim_until)]
        if not _done((yield Eval(lua.CLAIM, [new], claim))):
            return False  # taken: the old key stays as it is
        reply = yield Eval(lua.RENEW_OUT, [old], args)
        if reply == 0 or len(reply) == 2:  # nothing live, or the pointer
            yield Eval(lua.UNCLAIM, [new], [now, b""])
            return written(reply)
        pairs, expires_at, user = renewed_pairs(reply[0], now)
        if user is not None:
            yield self._index_add(user, new_key)
        return _done((yield Eval(lua.FILL, [new], [now, b"", pexpireat(expires_at), *pairs])))

    # -- the per-user index ------------------------------------------------------------------

    def user_sessions(self, user: str, now: float) -> Flow[list[SessionInfo]]:
        live = yield from self._live_members(index_name(self.prefix, user), user, now)
        return newest_first([session_info(info_id(text(m)), record) for m, record in live])

    def prune_index(self, index: bytes, now: float) -> Flow[None]:
        yield from self._live_members(index, index_user(self.prefix, index), now)

    def _live_members(
        self, index: bytes, user: str, now: float
    ) -> Flow[list[tuple[bytes, Record]]]:
        """The members of ``index`` that are live records of ``user``; prunes the rest."""
        members: list[bytes] = yield Members(index)
        if not members:
            return []
        metas = yield Metas([self.prefix + member for member in members], LISTED)
        live, dead = [], []
        for member, meta in zip(members, metas, strict=True):
            record = listed(meta, now, user)
            if record is None:
                dead.append(member)
            else:
                live.append((member, record))
        if dead:
            yield Eval(lua.PRUNE, [index], [INDEX_GRACE, *dead])
        return live

    def revoke_session(
        self, user: str, session_id: str, now: float, stale_until: float
    ) -> Flow[bool]:
        members: list[bytes] = yield Members(index_name(self.prefix, user))
        for member in members:
            if info_id(text(member)) == session_id:
                return (yield from self._revoke(text(member), user, now, stale_until, False))
        return False

    def _revoke(
        self, key: str, user: str, now: float, stale_until: float, tombstone: bool
    ) -> Flow[bool]:
        """End ``key`` if it is a live record of ``user``, following renewal pointers."""
        for _ in range(_HOPS):
            args: list[Arg] = [now, self._scripted, stale_until, pexpireat(stale_until), user]
            args.append(b"1" if tombstone else b"0")
            reply = yield Eval(lua.REVOKE, [self.name(key)], args)
            outcome = written(reply)
            if not isinstance(outcome, Moved):
                return outcome
            key, tombstone = outcome.key, True  # its successor may not be written yet
        return False

    def revoke_user(
        self, user: str, except_key: str | None, now: float, stale_until: float
    ) -> Flow[int]:
        index = index_name(self.prefix, user)
        if self.per_slot:
            return (yield from self._revoke_each(index, user, except_key, now, stale_until))
        args: list[Arg] = [now, self.prefix, stale_until, pexpireat(stale_until), user]
        args.append(except_key or b"")
        for _ in range(_REVOKE_TRIES):
            members: list[bytes] = yield Members(index)
            if not members:
                return 0
            names = [self.prefix + member for member in members]
            ended: int = yield Eval(lua.REVOKE_ALL, [index, *names], args)
            if ended >= 0:
                return ended
        raise SessionStoreError("Redis revoke_user gave up: the user's sessions kept changing")

    def _revoke_each(
        self, index: bytes, user: str, except_key: str | None, now: float, stale_until: float
    ) -> Flow[int]:
        spare = None if except_key is None else except_key.encode("utf-8", "surrogatepass")
        handled: set[bytes] = set()
        ended = 0
        while True:
            members: list[bytes] = yield Members(index)
            todo = [m for m in members if m not in handled and m != spare]
            if not todo:
                return ended
            for member in todo:
                ended += bool((yield from self._revoke(text(member), user, now, stale_until, True)))
            handled.update(todo)
            yield Eval(lua.PRUNE, [index], [INDEX_GRACE, *todo])

    # -- clear_expired -----------------------------------------------------------------------

    def expire_batch(self, names: list[bytes], now: float) -> Flow[int]:
        """Delete the hashes among ``names`` that are dead at ``now``."""
        metas = yield Metas(names, (b"e",))
        doomed = [name for name, meta in zip(names, metas, strict=True) if _is_past(meta, now)]
        if not doomed:
            return 0
        header: list[Arg] = [now, self._scripted]
        replies = yield EvalEach(lua.DROP_IF_DEAD, [([name], header) for name in doomed])
        return sum(int(reply) for reply in replies)

    def count_dead(self, names: list[bytes], now: float) -> Flow[int]:
        """How many hashes among ``names`` ``expire_batch`` would delete at ``now``."""
        metas = yield Metas(names, (b"e",))
        return sum(_is_past(meta, now) for meta in metas)


def _done(reply: Any) -> bool:
    return bool(reply == 1)


def _is_past(meta: Any, now: float) -> bool:
    try:
        return not isinstance(meta, Exception) and float(meta[0]) <= now
    except (TypeError, ValueError):
        return False
