"""``FileStore``: one file per session in a directory, shared safely by processes on one host."""

from __future__ import annotations

import logging
import math
import os
import time

from .._keys import info_id, is_valid_key
from .._records import (
    Change,
    Loaded,
    Moved,
    Record,
    SessionInfo,
    apply_change,
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
from ._file_directory import Peeked, SessionFiles, lives, warn_unreadable
from ._file_format import Entry, Head, encode_moved, encode_record, encode_stale, file_name

logger = logging.getLogger("sessionware")


class FileStore(SessionStore):
    """Sessions as files in ``directory``: ``<sha256 of key>.session``, created on first write.

    Files: the name is the hex SHA-256 of the key, so no key can name a path outside the
    directory, a listing (or a backup) of it reveals no usable key, and names stay
    distinct on case-insensitive filesystems. Keys not shaped like the ones sessionware
    generates are refused before any file access. A file holds a live record, or the
    ``Stale`` / ``Moved`` marker of a key ended or renewed lately; its header is plain
    JSON (``_file_format``), so expiry is judged without decoding any data.

    Atomicity: each write goes to a ``mkstemp`` file (mode 0600) in the same directory
    (mode 0700), then ``os.replace`` swaps it in, so a reader sees the old file or the new
    one, never a partial one; reads take no lock. There is no ``fsync``: after a power loss
    a session may be lost (an empty file is read as absent), acceptable for sessions.

    Concurrency: every write reads, decides and writes under the exclusive ``flock`` of
    its file's stripe (``_file_locks``), so concurrent deltas on one session all keep
    their changes and a key once ended is never written again. ``rotate`` and ``renew``
    hold the stripes of both keys, taken in a fixed order. A write that cannot get its
    lock within ``timeout`` seconds raises ``SessionStoreError`` (503) instead of
    hanging. ``flock`` is POSIX; on NFS it needs a Linux client mapping it to ``fcntl``.

    Per-user index: ``users/<hash of user id>/`` holds an empty entry per session file of
    that user (``_file_index``), kept under the same locks. Readers check each entry
    against its file's header, so a dead or re-assigned session is never listed; a
    revocation ends each record under its own lock and lists again until no entry is
    new, so a rotation racing it cannot escape.

    Expiry: an expired record or marker is never returned; ``clear_expired()`` removes
    it, judging by the header alone (a live session whose data this process cannot
    decode is kept), along with files whose header is unreadable, index entries that
    point at no live record, and temp files of writers that died an hour ago. Unreadable
    files are logged at WARNING, a session named by ``key_fingerprint`` only; ``OSError``
    raises ``SessionStoreError``. ``count_expired()`` and ``check()`` read the same
    headers and write nothing (``check`` never creates the directory).

    Async twins keep the base class's one thread hop per operation.
    """

    def __init__(self, directory: str | os.PathLike[str], timeout: float = 5.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise TypeError(f"timeout must be a number of seconds, not {timeout!r}")
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        # Nothing touches the disk here: a missing directory is created at the first write.
        self.directory = os.path.abspath(os.fspath(directory))
        self.timeout = float(timeout)
        self._files = SessionFiles(self.directory, self.timeout)

    # -- the operations --------------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        if not is_valid_key(key):
            return None
        with self._files.failures("load", key):
            entry = self._files.read(key, body=True)
        return entry if lives(entry, now) else None

    def insert(self, key: str, record: Record) -> bool:
        if not is_valid_key(key):
            return False
        blob = encode_record(record, info_id(key))
        files = self._files
        with files.failures("insert", key), files.locked(key):
            current = files.read(key, body=False)
            if lives(current, time.time()):
                return False
            files.put(file_name(key), blob, _user_of(current), record.user)
        return True

    def update(self, key: str, change: Change, now: float) -> Written:
        if not is_valid_key(key):
            return False
        files = self._files
        with files.failures("update", key), files.locked(key):
            current = files.read(key, body=True)
            if not isinstance(current, Record) or current.expires_at <= now:
                return _refusal(current, now)  # a key with no live record is never written
            try:
                merged = _merged(current, change, now)
            except ValueError as exc:  # packed fields that do not unpack
                warn_unreadable(key, exc)
                return False
            files.put(
                file_name(key), encode_record(merged, info_id(key)), current.user, merged.user
            )
        return True

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        if not is_valid_key(key):
            return False
        files = self._files
        with files.failures("delete", key), files.locked(key):
            current = files.read(key, body=False)
            if not isinstance(current, Record) or current.expires_at <= now:
                return _refusal(current, now)
            files.end(file_name(key), current.user, now, stale_until, encode_stale(stale_until))
        return True

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        if not (is_valid_key(key) and is_valid_key(new_key)):
            return False
        blob = encode_record(record, info_id(new_key))
        files = self._files
        with files.failures("rotate", key), files.locked(key, new_key):
            current = files.read(key, body=False)
            if not isinstance(current, Record) or current.expires_at <= now:
                return _refusal(current, now)
            taken = files.read(new_key, body=False)
            if lives(taken, now):
                return False
            # The new record first: a crash in between leaves the user signed in twice,
            # never signed out with their data lost.
            files.put(file_name(new_key), blob, _user_of(taken), record.user)
            files.end(file_name(key), current.user, now, stale_until, encode_stale(stale_until))
        return True

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        if not (is_valid_key(key) and is_valid_key(new_key)):
            return False
        files = self._files
        with files.failures("renew", key), files.locked(key, new_key):
            current = files.read(key, body=True)
            if not isinstance(current, Record) or current.expires_at <= now:
                return _refusal(current, now)
            taken = files.read(new_key, body=False)
            if lives(taken, now):
                return False
            renewed = current._replace(key_at=now, updated_at=now)
            blob = encode_record(renewed, info_id(new_key))
            files.put(file_name(new_key), blob, _user_of(taken), renewed.user)
            pointer = encode_moved(key, new_key, grace_until)
            files.end(file_name(key), current.user, now, grace_until, pointer)
        return True

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        with self._files.failures("clear_expired"):
            removed, unreadable = self._files.sweep(now_or(now), progress)
        if unreadable:
            logger.warning("FileStore: removed %d session files that were unreadable", unreadable)
        return removed

    def count_expired(self, now: float | None = None) -> int:
        with self._files.failures("count_expired"):
            census = self._files.census(now_or(now))
        return 0 if census is None else census[1]

    def check(self) -> list[Finding]:
        """The directory (never created here), and its sessions counted by their headers."""
        directory = self.directory
        with self._files.failures("check"):
            if not os.path.exists(directory):
                return [("directory", f"{directory}: missing (made at the first write)")]
            if not os.path.isdir(directory):
                raise NotADirectoryError(f"{directory} is not a directory")
            census = self._files.census(time.time())
        live, dead = census or (0, 0)
        writable = "writable" if os.access(directory, os.W_OK | os.X_OK) else "NOT writable"
        return [
            ("directory", f"{directory}: present, {writable} by this user"),
            ("sessions", f"{live} live"),
            ("expired", f"{dead} to remove (clear-expired)"),
        ]

    # -- the per-user index -----------------------------------------------------------------

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        user, now = user_text(user_id), now_or(now)
        infos = []
        with self._files.failures("user_sessions"):
            for name in self._files.index.names(user):
                info = _info_of(self._files.peek(name), user, now)
                if info is not None:
                    infos.append(info)
        return newest_first(infos)

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        user, now = user_text(user_id), now_or(now)
        with self._files.failures("revoke_session"):
            for name in self._files.index.names(user):
                info = _info_of(self._files.peek(name), user, now)
                if info is not None and info.id == session_id:
                    return self._revoke(name, user, now, stale_for)
        return False

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        user, now = user_text(user_id), now_or(now)
        spared = None if except_key is None else file_name(except_key)
        seen: set[str] = set()
        ended = 0
        with self._files.failures("revoke_user"):
            # A rotation or renewal adds its new key's entry before it ends the old key,
            # both under the old key's lock: finding an old key ended means its successor
            # is listed by now, so listing again until nothing is new catches every one.
            while fresh := [name for name in self._files.index.names(user) if name not in seen]:
                seen.update(fresh)
                for name in fresh:
                    if name != spared:
                        ended += self._revoke(name, user, now, stale_for)
        return ended

    def _revoke(self, name: str, user: str, now: float, stale_for: float) -> bool:
        """End the record in ``name`` if it is a live one of ``user``, checked under its
        lock; an entry that points at anything else is dropped from the index."""
        files = self._files
        with files.locked_names([name], "a session of a revoked user"):
            if _info_of(files.peek(name), user, now) is None:
                files.index.remove(user, name)
                return False
            until = now + stale_for
            files.end(name, user, now, until, encode_stale(until))
        return True


def _info_of(head: Peeked, user: str, now: float) -> SessionInfo | None:
    """The ``SessionInfo`` of ``head`` if it is a live record of ``user``."""
    if not (isinstance(head, Head) and head.record is not None and head.info is not None):
        return None
    if head.record.user != user or not lives(head, now):
        return None
    return session_info(head.info, head.record)


def _user_of(entry: Entry | None) -> str | None:
    return entry.user if isinstance(entry, Record) else None


def _refusal(entry: Entry | None, now: float) -> Written:
    """What a write gives on a key with no live record: its live pointer, else ``False``."""
    return entry if isinstance(entry, Moved) and entry.until > now else False


def _merged(record: Record, change: Change, now: float) -> Record:
    """``apply_change``, leaving the packed fields as they are when the data is untouched."""
    if change.touches_data:
        return apply_change(record, change, now)
    return apply_change(record._replace(fields={}), change, now)._replace(fields=record.fields)
