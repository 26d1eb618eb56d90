"""``FileStore``: one file per session in a directory, shared safely by processes on one host."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .._errors import SessionStoreError
from .._keys import is_valid_key, key_fingerprint
from .._records import Change, Record, apply_change, pack_record, unpack_record
from .._serializers import Serializer
from .base import SessionStore, now_or

logger = logging.getLogger("sessionware")

_SUFFIX = ".session"
_SESSION_FILE = re.compile(r"[0-9a-f]{64}\.session")
_TEMP_PREFIX = ".tmp-"
_LOCK_STRIPES = 64
_ORPHAN_AGE = 3600.0  # a temp file this old belongs to a writer that died


class _Corrupt:
    """Marks a session file that exists but does not decode."""


_CORRUPT = _Corrupt()


class FileStore(SessionStore):
    """Sessions as files in ``directory``: ``<sha256 of key>.session``, created on first write.

    File names: the name is the hex SHA-256 of the key, so no key can name a path outside
    the directory, a directory listing (or a backup of it) reveals no usable session key,
    and names stay distinct on case-insensitive filesystems. Keys not shaped like the
    ones sessionware generates are refused (``None`` / ``False``) before any file access.

    Atomicity: each write goes to a ``mkstemp`` file in the same directory (mode 0600),
    then ``os.replace`` swaps it in, so a reader sees the old record or the new one, never
    a partial file; readers therefore take no lock. There is no ``fsync``: after a power
    loss a session may be lost (an empty file is read as absent), which is acceptable for
    sessions and saves milliseconds per write.

    Concurrency: ``create``, ``update`` and ``delete`` read, merge and write under an
    exclusive ``fcntl.flock``, so two processes (or threads) updating different keys of
    one session both keep their changes, and a session deleted by one request is never
    recreated by a late update. The lock is one of 64 fixed stripe files (``.lock-NN``),
    chosen from the session's file name: never deleting a lock file avoids the race where
    a waiter locks a lock file that was just unlinked, and keeps the directory from
    growing with one lock file per session. Two sessions share a stripe with probability
    1/64, costing only a wait of one write (~0.2 ms). Each operation opens its own lock
    descriptor, so locks also exclude threads of one process and survive ``fork``.
    ``flock`` is POSIX; on NFS it needs a Linux client that maps it to ``fcntl`` locks.

    Expiry: a record whose ``expires_at`` has passed is never loaded nor updated;
    ``clear_expired()`` removes its file (and temp files of writers that died an hour
    ago). A corrupt or foreign file is treated as absent and logged at WARNING, naming
    the session by ``key_fingerprint``; any other ``OSError`` raises ``SessionStoreError``.

    Async twins keep the base class's one thread hop per operation.
    """

    def __init__(
        self, directory: str | os.PathLike[str], serializer: Serializer | None = None
    ) -> None:
        super().__init__(serializer)
        # Nothing touches the disk here: a missing directory is created at the first write.
        self.directory = os.path.abspath(os.fspath(directory))

    # -- sync API ------------------------------------------------------------------------

    def load(self, key: str, now: float) -> Record | None:
        if not is_valid_key(key):
            return None
        with self._failures():
            record = self._read(_file_name(key), key)
        return record if isinstance(record, Record) and record.expires_at > now else None

    def create(self, key: str, record: Record) -> bool:
        if not is_valid_key(key):
            return False
        blob = pack_record(record, self.serializer)
        name = _file_name(key)
        with self._failures(), self._locked(name):
            if _is_live(self._read(name, key), time.time()):
                return False
            self._write(name, blob)
        return True

    def update(self, key: str, change: Change, now: float) -> bool:
        if not is_valid_key(key):
            return False
        name = _file_name(key)
        with self._failures(), self._locked(name):
            current = self._read(name, key)
            if not isinstance(current, Record) or current.expires_at <= now:
                return False  # absent, corrupt or expired: never recreated by an update
            self._write(name, pack_record(apply_change(current, change), self.serializer))
        return True

    def delete(self, key: str) -> bool:
        if not is_valid_key(key):
            return False
        name = _file_name(key)
        with self._failures(), self._locked(name):
            return self._unlink(name)

    def clear_expired(self, now: float | None = None) -> int:
        now = now_or(now)
        orphan_before = time.time() - _ORPHAN_AGE  # file times are wall-clock times
        removed = 0
        with self._failures():
            try:
                with os.scandir(self.directory) as scan:
                    entries = list(scan)
            except FileNotFoundError:  # never written to: nothing to clear
                return 0
            for entry in entries:
                if _SESSION_FILE.fullmatch(entry.name):
                    removed += self._remove_if_dead(entry.name, now)
                elif entry.name.startswith(_TEMP_PREFIX):
                    self._remove_orphan(entry, orphan_before)
        return removed

    # -- files ---------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _read(self, name: str, key: str | None, warn: bool = True) -> Record | _Corrupt | None:
        """The record in ``name``; ``None`` if there is no file, ``_CORRUPT`` if it is bad."""
        try:
            with open(self._path(name), "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            return None
        try:
            return unpack_record(raw, self.serializer)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested meta
            if not warn:
                return _CORRUPT
            which = f"session {key_fingerprint(key)}" if key is not None else f"file {name}"
            logger.warning(
                "FileStore: %s has an unreadable record (%s); treated as absent",
                which,
                exc if isinstance(exc, ValueError) else "nested too deeply",
            )
            return _CORRUPT

    def _write(self, name: str, blob: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(blob)
            os.replace(temp, self._path(name))
        except BaseException:
            self._discard_temp(temp)
            raise

    def _discard_temp(self, temp: str) -> None:
        """Best-effort cleanup while another error propagates; that error is the one to see."""
        try:
            os.unlink(temp)
        except OSError as exc:
            # clear_expired() removes it within the hour; say so rather than hide it.
            logger.warning("FileStore: could not remove temp file %s: %s", temp, exc)

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            return False
        return True

    def _remove_if_dead(self, name: str, now: float) -> bool:
        """Unlink ``name`` if expired or corrupt, re-checked under its lock."""
        if _is_live(self._read(name, None, warn=False), now):  # cheap unlocked filter
            return False
        with self._locked(name):
            # A concurrent create may have replaced it with a live record meanwhile.
            current = self._read(name, None)
            if current is None or _is_live(current, now):
                return False
            return self._unlink(name)

    def _remove_orphan(self, entry: os.DirEntry[str], before: float) -> None:
        try:
            if entry.stat().st_mtime < before:
                os.unlink(entry.path)
        except FileNotFoundError:  # its writer finished (renamed it) or another sweep won
            return

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock of ``name``'s stripe; creates the directory if needed."""
        stripe = int(name[:4], 16) % _LOCK_STRIPES
        path = self._path(f".lock-{stripe:02d}")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @contextmanager
    def _failures(self) -> Iterator[None]:
        """Turn OS failures (permissions, full disk, not a directory) into store errors."""
        try:
            yield
        except OSError as exc:
            raise SessionStoreError(f"FileStore at {self.directory!r} failed: {exc}") from exc


def _is_live(current: Record | _Corrupt | None, now: float) -> bool:
    return isinstance(current, Record) and current.expires_at > now


def _file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest() + _SUFFIX
