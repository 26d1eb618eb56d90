"""The ``FileStore``'s per-user index: ``users/<hash of user id>/<session file name>``.

Each entry is an empty file named like the session file it points to. Entries of a
session file are added and removed only under that file's stripe lock, and a new user's
entry is added *before* the file is written, an old user's removed *after*: so the index
lists every live record of a user, and may briefly list a dead one (after a crash, until
``clear_expired``), which readers filter out by reading the session file's header.
"""

from __future__ import annotations

import errno
import hashlib
import os

from ._file_format import SESSION_FILE

# Adding an entry races ``clear_expired`` removing the user's directory once it is empty;
# the adder recreates the directory and tries again.
_ATTEMPTS = 3


class UserIndex:
    """The index directory of one store; every method may raise ``OSError``."""

    def __init__(self, directory: str) -> None:
        self.root = os.path.join(directory, "users")

    @staticmethod
    def folder_of(user: str) -> str:
        """The directory name of ``user``: a hash, so any id makes a safe file name."""
        return hashlib.sha256(
            b"sessionware.user:" + user.encode("utf-8", "surrogatepass")
        ).hexdigest()

    def add(self, user: str, name: str) -> None:
        folder = os.path.join(self.root, self.folder_of(user))
        path = os.path.join(folder, name)
        for attempt in range(_ATTEMPTS):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                if attempt == _ATTEMPTS - 1:
                    raise
                os.makedirs(self.root, mode=0o700, exist_ok=True)
                os.makedirs(folder, mode=0o700, exist_ok=True)
            else:
                os.close(descriptor)
                return

    def remove(self, user: str, name: str) -> None:
        self.discard(self.folder_of(user), name)

    def discard(self, folder: str, name: str) -> None:
        try:
            os.unlink(os.path.join(self.root, folder, name))
        except FileNotFoundError:  # never added (a crash), or already cleaned up
            return

    def names(self, user: str) -> list[str]:
        """The session file names listed for ``user``."""
        return self.names_in(self.folder_of(user))

    def names_in(self, folder: str) -> list[str]:
        try:
            names = os.listdir(os.path.join(self.root, folder))
        except FileNotFoundError:
            return []
        return [name for name in names if SESSION_FILE.fullmatch(name)]

    def folders(self) -> list[str]:
        try:
            return os.listdir(self.root)
        except FileNotFoundError:
            return []

    def remove_if_empty(self, folder: str) -> None:
        try:
            os.rmdir(os.path.join(self.root, folder))
        except OSError as exc:
            # Not empty (a live user, or a concurrent add), or already gone: keep going.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                raise
