"""What each ``SQLStore`` operation does, written once for the sync and the async driver.

An operation is a generator (a *flow*) that yields the statements it wants run
(``Execute``) and receives their rows; an executor drives it: ``SessionDatabase`` on a
SQLAlchemy connection (WSGI, command line, SQLite everywhere), ``AsyncSessionDatabase``
on a native async driver (PostgreSQL and MariaDB under ASGI). The executor also gives
each flow its connection and transaction (``Mode``), so a flow holds only the logic:
which rows to read, what to merge, what to write, when to give up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import sqlalchemy as sa

from .._keys import info_id, key_fingerprint
from .._records import (
    Change,
    Fields,
    Loaded,
    Moved,
    PackedFields,
    Record,
    SessionInfo,
    apply_change,
    check_timestamp,
    newest_first,
    pack_fields,
    session_info,
)
from .._store import Written
from ._sql_schema import MOVED, RECORD, STALE
from ._sql_statements import (
    SessionStatements,
    checked_user,
    ending_values,
    loaded,
    pack_expiry,
    peeked,
    record_values,
)

logger = logging.getLogger("sessionware")

T = TypeVar("T")

#: How an executor runs a flow: ``read`` one statement on an autocommit connection;
#: ``statement`` writes that are one statement each; ``transaction`` one transaction
#: (SQLite: ``BEGIN IMMEDIATE``); ``durable`` the same, committed with a WAL flush on
#: PostgreSQL (a key that was ended stays ended after a crash).
Mode = Literal["read", "statement", "transaction", "durable"]

_KEYS_PER_STATEMENT = 500  # keys in one IN (...) of a revocation


class Rows(Protocol):
    """What an ``Execute`` gives back (a SQLAlchemy result, or the async driver's rows)."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...


@dataclass(frozen=True, slots=True)
class Execute:
    """Run ``statement`` with ``params``. ``size``: the bytes of session data it writes,
    so that a refusal for its size is told apart from an outage. ``contended``: a write
    that may lose a race for its key, which the flow then learns as ``KeyTaken``."""

    statement: sa.Executable
    params: dict[str, Any]
    size: int | None = None
    contended: bool = False


@dataclass(frozen=True, slots=True)
class Rollback:
    """Undo the transaction so far (the flow then returns)."""


class KeyTaken(Exception):
    """A contended write lost its race: a plain INSERT met an existing primary key
    (MySQL's first try), or InnoDB resolved a deadlock between two writers of one key
    against this one (its transaction is rolled back)."""


_DEADLOCK = 1213  # MariaDB/MySQL: "Deadlock found when trying to get lock"


def lost_race(cause: BaseException) -> bool:
    """Whether a driver error is InnoDB ending this transaction to break a deadlock."""
    args: tuple[Any, ...] = getattr(cause, "args", ())
    return bool(args) and args[0] == _DEADLOCK


Step = Execute | Rollback
Flow = Generator[Step, Any, T]


def execute(
    statement: sa.Executable,
    params: dict[str, Any],
    size: int | None = None,
    contended: bool = False,
) -> Generator[Step, Rows, Rows]:
    """``rows = yield from execute(...)``: the typed way for a flow to run a statement."""
    rows: Rows = yield Execute(statement, params, size, contended)
    return rows


class SessionFlows:
    """The operations of one session table; ``check_size`` refuses data too large for it."""

    def __init__(self, sql: SessionStatements, check_size: Callable[[int], None]) -> None:
        self.sql = sql
        self.check_size = check_size
        self._expired: dict[int, sa.Select[Any]] = {}  # a batch's statement, by its size

    def packed(self, fields: Fields) -> bytes:
        blob = pack_fields(fields)
        self.check_size(len(blob))
        return blob

    # -- the operations (each in the executor's ``Mode`` noted) ----------------------------

    def load(self, key: str, now: float) -> Flow[Loaded]:  # read
        row = (yield from execute(self.sql.load, {"k": key, "now": now})).first()
        return None if row is None else _entry(key, row)

    def insert(self, key: str, record: Record) -> Flow[bool]:
        # statement on PostgreSQL and SQLite (one upsert), else transaction
        blob = self.packed(record.fields)
        params = {"k": key, "now": time.time(), **record_values(record, blob)}
        return (yield from self._insert_record(params, len(blob)))

    def update(self, key: str, change: Change, now: float) -> Flow[Written]:  # transaction
        row = (yield from execute(self.sql.load_locked, {"k": key, "now": now})).first()
        current = None if row is None else _entry(key, row)
        if not isinstance(current, Record):
            return current if isinstance(current, Moved) else False
        try:
            new = apply_change(current, change, now)
            blob = pack_fields(new.fields)
        except ValueError as exc:  # the stored JSON is corrupt: nothing to merge into
            warn_unreadable(key, exc)
            return False
        self.check_size(len(blob))
        params = {
            "k": key,
            "now": now,
            "v_data": blob,
            "v_expires": new.expires_at,
            "v_expiry": pack_expiry(new.expiry),
            "v_user": checked_user(new.user),
        }
        yield from execute(self.sql.write, params, len(blob))
        return True

    def touch(self, key: str, change: Change, now: float) -> Flow[Written]:  # statement
        """A save that changes no data: one UPDATE guarded by liveness, nothing to merge."""
        statement = self.sql.touch[change.expiry_changed, change.user_changed]
        params: dict[str, Any] = {"k": key, "now": now, "v_expires": change.expires_at}
        if change.expiry_changed:
            params["v_expiry"] = pack_expiry(change.expiry)
        if change.user_changed:
            params["v_user"] = checked_user(change.user)
        if (yield from execute(statement, params)).rowcount == 1:
            return True
        return (yield from self._peek(key, now))

    def delete(self, key: str, now: float, stale_until: float) -> Flow[Written]:  # durable
        params = {"k": key, "now": now}
        if stale_until > now:
            ending = params | ending_values(STALE, stale_until)
            ended = (yield from execute(self.sql.end, ending)).rowcount
        else:
            ended = (yield from execute(self.sql.forget, params)).rowcount
        if ended == 1:
            return True
        return (yield from self._peek(key, now))

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Flow[Written]:  # durable
        blob = self.packed(record.fields)
        params = {"k": key, "now": now}
        # The old key's marker stays even when already dead (stale_until <= now): its
        # target lets a racing revocation find the new key.
        ending = params | ending_values(STALE, stale_until, new_key)
        if (yield from execute(self.sql.end, ending)).rowcount != 1:
            return (yield from self._peek(key, now))
        written = {"k": new_key, "now": now, **record_values(record, blob)}
        if not (yield from self._insert_record(written, len(blob))):
            yield Rollback()  # the new key is taken: the old one lives on
            return False
        return True

    def renew(
        self, key: str, new_key: str, now: float, grace_until: float
    ) -> Flow[Written]:  # transaction
        params = {"k": key, "now": now}
        row = (yield from execute(self.sql.load_locked, params)).first()
        current = None if row is None else _entry(key, row)
        if not isinstance(current, Record):
            return current if isinstance(current, Moved) else False
        fields = current.fields
        blob = fields.blob if isinstance(fields, PackedFields) else pack_fields(fields)
        moved = Record(
            fields,
            current.created_at,
            current.expires_at,
            current.expiry,
            key_at=now,
            updated_at=now,
            user=current.user,
        )
        written = {"k": new_key, "now": now, **record_values(moved, blob)}
        if not (yield from self._insert_record(written, len(blob))):
            yield Rollback()
            return False
        yield from execute(self.sql.end, params | ending_values(MOVED, grace_until, new_key))
        return True

    def clear_batch(self, now: float, batch: int) -> Flow[tuple[int, int]]:  # transaction
        """One batch of a purge: (expired keys found, rows removed)."""
        select = self._expired.get(batch)
        if select is None:  # built once per size: executors cache statements they compile
            select = self._expired[batch] = self.sql.expired_keys.limit(batch)
        rows = (yield from execute(select, {"now": now})).all()
        keys = [row[0] for row in rows]
        if not keys:
            return 0, 0
        params = {"keys": keys, "now": now}
        return len(keys), (yield from execute(self.sql.delete_expired, params)).rowcount

    def count_expired(self, now: float) -> Flow[int]:  # read
        """What a purge at ``now`` would remove (a dry run)."""
        return int((yield from execute(self.sql.count_expired, {"now": now})).first()[0])

    # -- the per-user index ----------------------------------------------------------------

    def user_sessions(self, user: str, now: float) -> Flow[list[SessionInfo]]:  # read
        rows = (yield from execute(self.sql.user_sessions, {"u": user, "now": now})).all()
        return newest_first([info for row in rows if (info := _session_info(row)) is not None])

    def revoke_session(
        self, user: str, session_id: str, now: float, stale_for: float
    ) -> Flow[bool]:  # durable
        rows = (yield from execute(self.sql.user_sessions, {"u": user, "now": now})).all()
        key = next((row[0] for row in rows if info_id(row[0]) == session_id), None)
        if key is None:
            return False
        params = {"k": key, "u": user, "now": now}
        if stale_for > 0:
            ending = params | ending_values(STALE, now + stale_for)
            return (yield from execute(self.sql.end_of_user, ending)).rowcount == 1
        return (yield from execute(self.sql.forget_of_user, params)).rowcount == 1

    def revoke_user(
        self, user: str, except_key: str | None, now: float, stale_for: float
    ) -> Flow[int]:  # durable
        live = yield from self._lock_live_sessions(user, now)
        if except_key is not None:
            live.discard(except_key)
        ended = 0
        keys = sorted(live)
        for start in range(0, len(keys), _KEYS_PER_STATEMENT):
            params = {"keys": keys[start : start + _KEYS_PER_STATEMENT], "now": now}
            if stale_for > 0:
                ending = params | ending_values(STALE, now + stale_for)
                ended += (yield from execute(self.sql.end_many, ending)).rowcount
            else:
                ended += (yield from execute(self.sql.forget_many, params)).rowcount
        return ended

    def _lock_live_sessions(self, user: str, now: float) -> Flow[set[str]]:
        """Lock every row of ``user`` and the keys that replaced its ended ones; the keys
        of the live records among them.

        A rotation or renewal that committed while we waited for its row lock has left a
        marker naming the new key, which our first statement could not see yet.
        """
        live: set[str] = set()
        seen: set[str] = set()
        rows = (yield from execute(self.sql.user_rows_locked, {"u": user})).all()
        while rows:
            successors = []
            for key, kind, target, expires_at in rows:
                seen.add(key)
                if kind == RECORD and expires_at > now:
                    live.add(key)
                elif kind != RECORD and target:
                    successors.append(target)
            successors = [key for key in successors if key not in seen]
            rows = []
            if successors:
                params = {"keys": successors, "u": user}
                rows = (yield from execute(self.sql.followed_locked, params)).all()
        return live

    # -- helpers ---------------------------------------------------------------------------

    def _peek(self, key: str, now: float) -> Flow[Written]:
        """What a write that found no live record returns: the pointer there, or not."""
        return peeked((yield from execute(self.sql.peek, {"k": key, "now": now})).first())

    def _insert_record(self, params: dict[str, Any], size: int) -> Flow[bool]:
        """Write a record where no live row holds the key; ``False`` if one does."""
        if self.sql.replace_dead is None:
            return (yield from execute(self.sql.insert, params, size)).rowcount == 1
        try:
            yield from execute(self.sql.insert, params, size, contended=True)
            return True
        except KeyTaken:
            pass  # taken: by a live row, a concurrent insert, or a dead row to replace
        # Guarded by liveness, so of two racing inserts over a dead row only one replaces;
        # InnoDB may also break their deadlock (both hold the row's shared lock from the
        # failed INSERT) by ending one: that one lost the race too.
        try:
            replaced = yield from execute(self.sql.replace_dead, params, size, contended=True)
        except KeyTaken:
            return False
        return replaced.rowcount == 1


def _entry(key: str, row: Sequence[Any]) -> Loaded:
    try:
        return loaded(row)
    except ValueError as exc:
        warn_unreadable(key, exc)
        return None


def _session_info(row: Sequence[Any]) -> SessionInfo | None:
    key, created_at, updated_at, expires_at = row
    try:
        record = Record(
            {},
            check_timestamp(created_at),
            check_timestamp(expires_at),
            updated_at=None if updated_at is None else check_timestamp(updated_at),
        )
    except ValueError:
        return None
    return session_info(info_id(key), record)


def warn_unreadable(key: str, exc: Exception) -> None:
    logger.warning(
        "session %s has unreadable data in the SQL store (%s); treated as absent",
        key_fingerprint(key),
        exc.__class__.__name__,
    )
