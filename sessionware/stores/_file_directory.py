"""The ``FileStore``'s directory: session files read without a lock and written under
one, the per-user index kept in step with them, and the sweep of dead files."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from .._errors import map_store_errors
from .._keys import key_fingerprint
from .._records import Record
from .._store import Progress
from ._file_format import SESSION_FILE, Entry, Head, entry_of, file_name, read_head
from ._file_index import UserIndex
from ._file_locks import hold_stripes

logger = logging.getLogger("sessionware")

TEMP_PREFIX = ".tmp-"
SWEEP_BATCH = 500  # directory entries a sweep looks at between two progress reports
_ORPHAN_AGE = 3600.0  # a temp file this old belongs to a writer that died


class Unreadable:
    """A session file that exists but whose header is not ours."""


UNREADABLE = Unreadable()
Peeked = Head | Unreadable | None


def until_of(entry: Entry | Head) -> float:
    return entry.expires_at if isinstance(entry, Record) else entry.until


def lives(entry: Entry | Peeked, now: float) -> bool:
    return entry is not None and not isinstance(entry, Unreadable) and until_of(entry) > now


class SessionFiles:
    """The files of one store. Reads take no lock (writes replace files whole); every
    method that writes expects the caller to hold the stripe lock of the file it writes."""

    def __init__(self, directory: str, timeout: float) -> None:
        self.directory = directory
        self.timeout = timeout
        self.index = UserIndex(directory)

    # -- locks and failures ------------------------------------------------------------------

    def locked(self, *keys: str) -> AbstractContextManager[None]:
        names = [file_name(key) for key in keys]
        what = "session " + " and ".join(key_fingerprint(key) for key in keys)
        return self.locked_names(names, what)

    def locked_names(self, names: list[str], what: str) -> AbstractContextManager[None]:
        return hold_stripes(self.directory, names, self.timeout, what)

    @contextmanager
    def failures(self, operation: str, key: str | None = None) -> Iterator[None]:
        """OS failures (permissions, full disk, not a directory) become store errors that
        name the session by its fingerprint, never by its file name."""
        what = operation if key is None else f"{operation} of session {key_fingerprint(key)}"
        with map_store_errors(f"FileStore at {self.directory!r}", what, OSError):
            try:
                yield
            except OSError as exc:
                if exc.filename is None:
                    raise
                # The path may name a session file: the unkeyed hash of its key.
                raise type(exc)(exc.errno, exc.strerror) from exc

    # -- reading ------------------------------------------------------------------------------

    def read(self, key: str, body: bool) -> Entry | None:
        """What ``key``'s file holds (a record's fields too when ``body``); ``None`` when
        there is no file or it is unreadable (logged, naming the key's fingerprint)."""
        try:
            with open(self._path(file_name(key)), "rb") as file:
                try:
                    return entry_of(read_head(file), key, file.read() if body else None)
                except ValueError as exc:
                    warn_unreadable(key, exc)
                    return None
        except FileNotFoundError:
            return None

    def peek(self, name: str) -> Peeked:
        """The header of the file ``name``, for those who know no key."""
        try:
            with open(self._path(name), "rb") as file:
                try:
                    return read_head(file)
                except ValueError:
                    return UNREADABLE
        except FileNotFoundError:
            return None

    # -- writing (the caller holds the file's lock) -------------------------------------------

    def put(self, name: str, blob: bytes, was: str | None, becomes: str | None) -> None:
        """Write ``blob`` as ``name``, moving its index entry from user ``was`` to
        ``becomes``: added before the file, removed after it (see ``_file_index``)."""
        if becomes is not None and becomes != was:
            self.index.add(becomes, name)
        self._write(name, blob)
        if was is not None and was != becomes:
            self.index.remove(was, name)

    def end(self, name: str, user: str | None, now: float, until: float, marker: bytes) -> None:
        """The record of ``user`` in ``name`` is over: ``marker`` takes its place until
        ``until``, or nothing when that is not in the future."""
        if until > now:
            self.put(name, marker, user, None)
            return
        _unlink(self._path(name))
        if user is not None:
            self.index.remove(user, name)

    def _write(self, name: str, blob: bytes) -> None:
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(blob)
            os.replace(temp, self._path(name))
        except BaseException:
            _discard_temp(temp)
            raise

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    # -- the sweep ------------------------------------------------------------------------------

    def sweep(self, now: float, progress: Progress | None = None) -> tuple[int, int]:
        """Remove dead and unreadable session files, index entries that point at no live
        record of their user, and orphaned temp files; ``(files removed, unreadable)``.
        ``progress`` hears the files removed so far every ``SWEEP_BATCH`` files."""
        orphan_before = time.time() - _ORPHAN_AGE  # file times are wall-clock times
        entries = self._listing()
        removed = unreadable = 0
        for seen, entry in enumerate(entries or (), start=1):
            if SESSION_FILE.fullmatch(entry.name):
                outcome = self._remove_if_dead(entry.name, now)
                removed += outcome is not None
                unreadable += outcome is UNREADABLE
            elif entry.name.startswith(TEMP_PREFIX):
                _remove_orphan(entry, orphan_before)
            if progress is not None and seen % SWEEP_BATCH == 0:
                progress(removed)
        if entries is not None:
            self._prune_index(now)
        if progress is not None:
            progress(removed)
        return removed, unreadable

    def census(self, now: float) -> tuple[int, int] | None:
        """``(live records, files a sweep would remove)``, judged by headers alone;
        ``None`` when the directory does not exist. Nothing is written."""
        entries = self._listing()
        if entries is None:
            return None
        live = dead = 0
        for entry in entries:
            if SESSION_FILE.fullmatch(entry.name):
                head = self.peek(entry.name)
                if not lives(head, now):
                    dead += head is not None  # gone meanwhile: nothing to remove
                elif isinstance(head, Head) and head.record is not None:
                    live += 1
        return live, dead

    def _listing(self) -> list[os.DirEntry[str]] | None:
        """The directory's entries; ``None`` when it does not exist (never written to)."""
        try:
            with os.scandir(self.directory) as scan:
                return list(scan)
        except FileNotFoundError:
            return None

    def _remove_if_dead(self, name: str, now: float) -> Peeked:
        """Unlink ``name`` if it is dead or unreadable, judged by its header alone and
        re-checked under its lock; what it held, or ``None`` if it was kept."""
        if lives(self.peek(name), now):  # a cheap unlocked filter
            return None
        with self.locked_names([name], "an expired session"):
            head = self.peek(name)  # a concurrent insert may have replaced it meanwhile
            if head is None or lives(head, now):
                return None
            _unlink(self._path(name))
            if isinstance(head, Head) and head.user is not None:
                self.index.remove(head.user, name)
            return head

    def _prune_index(self, now: float) -> None:
        for folder in self.index.folders():
            for name in self.index.names_in(folder):
                if not self._indexed(folder, name, now):
                    with self.locked_names([name], "an indexed session"):
                        if not self._indexed(folder, name, now):
                            self.index.discard(folder, name)
            self.index.remove_if_empty(folder)

    def _indexed(self, folder: str, name: str, now: float) -> bool:
        """Whether ``name`` is a live record of the user whose index folder is ``folder``."""
        head = self.peek(name)
        user = head.user if isinstance(head, Head) else None
        return user is not None and lives(head, now) and self.index.folder_of(user) == folder


def warn_unreadable(key: str, exc: ValueError) -> None:
    logger.warning(
        "FileStore: session %s has an unreadable file (%s); treated as absent",
        key_fingerprint(key),
        exc,
    )


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:  # already gone: what the caller wanted
        return


def _remove_orphan(entry: os.DirEntry[str], before: float) -> None:
    try:
        if entry.stat().st_mtime < before:
            os.unlink(entry.path)
    except FileNotFoundError:  # its writer finished (renamed it) or another sweep won
        return


def _discard_temp(temp: str) -> None:
    """Best-effort cleanup while another error propagates; that error is the one to see."""
    try:
        os.unlink(temp)
    except OSError as exc:
        # clear_expired() removes it within the hour; say so rather than hide it.
        logger.warning("FileStore: could not remove a temp file (%s)", exc.strerror)
