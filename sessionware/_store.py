"""The contract every store fulfils, sync for WSGI and async for ASGI (public as
``sessionware.stores.base``).

A store keeps, per session key, one of three things:

- a ``Record``: a live session (its *fields*, encoded bytes, plus timing and user);
- a ``Stale`` marker: the key was flushed, rotated away or revoked lately;
- a ``Moved`` pointer: the key was renewed lately and its session lives under another.

What every implementation guarantees (``sessionware.testing.conformance`` checks it):

- **Atomic deltas.** ``update`` applies a ``Change`` to the live record in one atomic
  step, so concurrent requests that change different keys of one session all keep their
  changes; it never writes onto a key that holds no live record.
- **No resurrection.** Once ``delete``, ``rotate`` or a revocation has ended a key, no
  later ``update``, ``insert``, ``rotate`` or ``renew`` brings data back under it.
- **Expiry.** A record whose ``expires_at`` has passed, and a marker whose ``until`` has
  passed, are never returned: ``load`` gives ``None``. ``clear_expired`` removes them (a
  store whose backend expires entries by itself may find nothing to do), telling its
  ``progress`` callback how many so far; ``count_expired`` says how many it would.
- **Following.** Every write given a key that holds a live ``Moved`` pointer writes
  nothing and returns that ``Moved``, so the caller can follow it.
- **Per-user index** (``supports_users``): ``user_sessions`` lists the live records whose
  ``user`` is the given id, however they got or lost it (insert, update, rotate, renew,
  delete, expiry); a revocation turns each into a ``Stale`` marker atomically with
  respect to that session's other writes.

Operators: ``check`` reports what the store finds at its location (reachable, table or
directory present, how many sessions) and creates nothing; the command line's ``check``
prints it.

Subclasses implement the sync methods; the async twins default to one thread hop each.
A store with native async I/O overrides the twins; a store that can only do async sets
``supports_sync = False`` and is refused by the WSGI middleware.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import ClassVar

import anyio.to_thread

from ._formats import CookieFormat, PlainKey, SignedKey
from ._records import Change, Loaded, Moved, Record, SessionInfo
from ._serializers import FieldCodec

Written = bool | Moved
"""What a write gives: ``True`` done, ``False`` nothing live there (nothing written), or
the ``Moved`` pointer the key holds (nothing written; follow it)."""

DEFAULT_STALE_WINDOW = 60.0

OPERATIONS = (
    "load",
    "insert",
    "update",
    "delete",
    "rotate",
    "renew",
    "clear_expired",
    "count_expired",
    "check",
    "user_sessions",
    "revoke_session",
    "revoke_user",
    "delete_all",
)
"""The operations a store's errors are reported under ("Redis failed in rotate: …");
``delete_all`` is the server stores' reset for tests."""

Progress = Callable[[int], None]
"""Told how many entries a purge has removed so far (``clear_expired(progress=…)``)."""

Finding = tuple[str, str]
"""One row of ``check()``: what was looked at, and what was found (``("table",
"present, schema current")``)."""


class SessionStore:
    """Base class of every store; see the module docstring for the guarantees."""

    #: The WSGI middleware and the command line need the sync methods.
    supports_sync: ClassVar[bool] = True
    #: Whether ``user_sessions`` and the revocations work (the ``user_key`` option).
    supports_users: ClassVar[bool] = True
    #: Whether the store keeps sessions on the server (stale keys, revocation, renewal
    #: pointers need it); the cookie store does not.
    server_side: ClassVar[bool] = True
    #: Whether every process that opens the store the same way sees the same sessions.
    #: ``MemoryStore`` keeps them in one process; ``CachedStore`` refuses such a component
    #: unless told ``single_process=True``.
    shared: ClassVar[bool] = True
    #: Whether the store keeps records as Python objects and gives every load the same
    #: one (``MemoryStore``): the middleware then hands it ``KeptFields``, which remember
    #: what they decode to, and a ``Change.decoded`` to keep them so.
    keeps_objects: ClassVar[bool] = False
    #: The most bytes of encoded data one session may hold here; ``None`` for no limit.
    #: The middleware checks it before any store call (``SessionTooLargeError``, 500).
    max_data_bytes: int | None = None

    # -- the operations (sync) ------------------------------------------------------------

    def load(self, key: str, now: float) -> Loaded:
        """The live ``Record`` under ``key``, its live ``Stale`` or ``Moved`` marker, or
        ``None`` (absent, expired, or unreadable: never an error for bad stored bytes)."""
        raise NotImplementedError

    def insert(self, key: str, record: Record) -> bool:
        """Write ``record`` under a key nobody holds; ``False``, writing nothing, if a live
        record or an unexpired marker holds it. Dead entries under it are replaced."""
        raise NotImplementedError

    def update(self, key: str, change: Change, now: float) -> Written:
        """Apply ``change`` atomically to the live record (see ``apply_change``)."""
        raise NotImplementedError

    def delete(self, key: str, now: float, stale_until: float) -> Written:
        """End the live session under ``key``; it becomes ``Stale(stale_until)`` (or is
        removed outright when ``stale_until <= now``). ``False`` if there was none."""
        raise NotImplementedError

    def rotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        """In one atomic step, end ``key`` as ``delete`` does and write ``record`` under
        ``new_key`` (login: ``cycle_key()``). ``False``, writing nothing, if ``key``
        holds no live record."""
        raise NotImplementedError

    def renew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        """In one atomic step, move the live record to ``new_key`` (with ``key_at`` and
        ``updated_at`` set to ``now``) and leave ``Moved(new_key, grace_until)`` under
        ``key``. A key that already holds a pointer gives that ``Moved``: of concurrent
        renewals, one wins and the others follow it."""
        raise NotImplementedError

    def clear_expired(self, now: float | None = None, progress: Progress | None = None) -> int:
        """Remove expired records and markers; the number of entries removed.

        ``progress``, when given, is called with the number removed so far as a long
        purge goes (after each batch, and at least once at the end, with the total)."""
        raise NotImplementedError

    def count_expired(self, now: float | None = None) -> int:
        """How many entries ``clear_expired(now)`` would remove, removing nothing (a dry
        run); ``NotImplementedError`` where the store cannot tell."""
        raise NotImplementedError

    def check(self) -> list[Finding]:
        """Connect, create nothing, and report what is there: whether the backend answers,
        where (server, database, directory; never a password), whether the table or
        directory exists, how many sessions it holds (``"unknown"`` where counting is not
        cheap). ``SessionStoreError`` when the backend cannot be reached."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and files; the store may be used again afterwards."""

    # -- the per-user index -----------------------------------------------------------------

    def user_sessions(self, user_id: str | int, now: float | None = None) -> list[SessionInfo]:
        """The live sessions of ``user_id``, newest first."""
        raise NotImplementedError

    def revoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        """End the session whose ``SessionInfo.id`` is ``session_id``, if it is live and
        belongs to ``user_id``; its key becomes stale for ``stale_for`` seconds."""
        raise NotImplementedError

    def revoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        """End every live session of ``user_id`` but the one under ``except_key``; the
        number ended."""
        raise NotImplementedError

    # -- how the cookie carries a session of this store --------------------------------------

    def cookie_format(self, secrets: list[bytes] | None, codec: FieldCodec) -> CookieFormat:
        """The cookie value for this store: the key, signed when secrets are given."""
        return PlainKey() if secrets is None else SignedKey(secrets)

    # -- async twins: one thread hop per operation unless overridden ----------------------

    async def aload(self, key: str, now: float) -> Loaded:
        return await anyio.to_thread.run_sync(partial(self.load, key, now))

    async def ainsert(self, key: str, record: Record) -> bool:
        return await anyio.to_thread.run_sync(partial(self.insert, key, record))

    async def aupdate(self, key: str, change: Change, now: float) -> Written:
        return await anyio.to_thread.run_sync(partial(self.update, key, change, now))

    async def adelete(self, key: str, now: float, stale_until: float) -> Written:
        return await anyio.to_thread.run_sync(partial(self.delete, key, now, stale_until))

    async def arotate(
        self, key: str, new_key: str, record: Record, now: float, stale_until: float
    ) -> Written:
        return await anyio.to_thread.run_sync(
            partial(self.rotate, key, new_key, record, now, stale_until)
        )

    async def arenew(self, key: str, new_key: str, now: float, grace_until: float) -> Written:
        return await anyio.to_thread.run_sync(partial(self.renew, key, new_key, now, grace_until))

    async def aclear_expired(
        self, now: float | None = None, progress: Progress | None = None
    ) -> int:
        return await anyio.to_thread.run_sync(partial(self.clear_expired, now, progress))

    async def acount_expired(self, now: float | None = None) -> int:
        return await anyio.to_thread.run_sync(partial(self.count_expired, now))

    async def acheck(self) -> list[Finding]:
        return await anyio.to_thread.run_sync(self.check)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.close)

    async def auser_sessions(
        self, user_id: str | int, now: float | None = None
    ) -> list[SessionInfo]:
        return await anyio.to_thread.run_sync(partial(self.user_sessions, user_id, now))

    async def arevoke_session(
        self,
        user_id: str | int,
        session_id: str,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> bool:
        return await anyio.to_thread.run_sync(
            partial(self.revoke_session, user_id, session_id, now, stale_for)
        )

    async def arevoke_user(
        self,
        user_id: str | int,
        except_key: str | None = None,
        now: float | None = None,
        stale_for: float = DEFAULT_STALE_WINDOW,
    ) -> int:
        return await anyio.to_thread.run_sync(
            partial(self.revoke_user, user_id, except_key, now, stale_for)
        )


def now_or(now: float | None) -> float:
    """``now`` if given (tests pin the clock), else the wall clock."""
    return time.time() if now is None else now


def user_text(user_id: str | int) -> str:
    """The index form of a user id: ``42`` and ``"42"`` name the same user."""
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise TypeError(f"a user id is a str or an int, not {type(user_id).__name__}")
    return str(user_id)
