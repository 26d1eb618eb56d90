"""The ``FileStore``'s locks: 64 striped ``flock`` files, taken with a timeout.

A session file's lock is one of 64 fixed stripe files (``.lock-NN``), chosen from its
name. Lock files are never deleted, which avoids the race where a waiter locks a file
that was just unlinked, and keeps the directory from growing one lock file per session;
two sessions share a stripe with probability 1/64, costing a wait of one write.

Each acquisition opens its own descriptor, so the locks exclude threads of one process
as well as processes. Operations on two sessions (rotation, renewal) take both stripes in
ascending order, so two of them never wait on each other in a cycle.

A lock is polled (non-blocking ``flock`` and short sleeps) rather than awaited, so a
writer that cannot get it within the store's timeout fails with ``SessionStoreError``
(an outage, 503) instead of hanging a worker behind a stuck process.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from .._errors import SessionStoreError

STRIPES = 64
LOCK_PREFIX = ".lock-"
# Polling starts fast (a write holds a stripe for ~0.2 ms) and backs off to a few ms.
_FIRST_WAIT = 0.0002
_LONGEST_WAIT = 0.005


def stripe_of(name: str) -> int:
    """The stripe of a session file name (its leading hex digits)."""
    return int(name[:4], 16) % STRIPES


@contextmanager
def hold_stripes(directory: str, names: Iterable[str], timeout: float, what: str) -> Iterator[None]:
    """Hold the exclusive locks of ``names``' stripes; creates ``directory`` if needed.

    ``what`` names the sessions in the timeout error (fingerprints, never keys).
    """
    deadline = time.monotonic() + timeout
    descriptors: list[int] = []
    try:
        for stripe in sorted({stripe_of(name) for name in names}):
            descriptor = _open(directory, stripe)
            descriptors.append(descriptor)
            if not _acquire(descriptor, deadline):
                raise SessionStoreError(
                    f"FileStore at {directory!r} could not lock {what} within {timeout:g} s "
                    "(another process holds its lock)"
                )
        yield
    finally:
        for descriptor in reversed(descriptors):
            os.close(descriptor)  # closing the descriptor releases its lock


def _open(directory: str, stripe: int) -> int:
    path = os.path.join(directory, f"{LOCK_PREFIX}{stripe:02d}")
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o600)
    except FileNotFoundError:  # the first write: nothing touches the disk before it
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return os.open(path, flags, 0o600)


def _acquire(descriptor: int, deadline: float) -> bool:
    """Whether the lock was taken before ``deadline``."""
    wait = _FIRST_WAIT
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(wait, left))
            wait = min(wait * 2, _LONGEST_WAIT)
        else:
            return True
