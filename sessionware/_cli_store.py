"""The store commands of ``sessionware``: ``clear-expired``, ``check``, ``sessions`` and
``revoke``, each on a store named by its URL.

A command never creates what it was pointed at: a file store's missing directory, or
(except for ``check``, which reports it) a SQL store's missing database or table, is a
mistake in the URL (exit 2) rather than an empty store to create, so a typo in a cron
line is noticed. Stores whose sessions a separate process cannot reach (``memory://``,
``cookie://``) are refused the same way.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, TextIO, cast

from ._store import SessionStore
from .stores._cached import CachedStore
from .stores._file import FileStore
from .stores._urls import store_from_url

if TYPE_CHECKING:
    from .stores._sql import SQLStore

#: What each command does to a store, for the messages that refuse one.
VERBS = {"clear-expired": "purge", "check": "check", "sessions": "list", "revoke": "revoke"}


class UsageError(Exception):
    """A mistake in what was asked (a URL, a store, an id): exit code 2."""


def open_store(url: str, command: str) -> SessionStore:
    """The store ``url`` names, if ``command`` can work on it; ``UsageError`` if not."""
    try:
        store = store_from_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    verb = VERBS[command]
    if not store.server_side:
        raise UsageError(
            f"cookie:// keeps each session in its browser's cookie: there is nothing on "
            f"the server to {verb}"
        )
    if not store.shared:
        raise UsageError(
            "memory:// keeps sessions inside the application's own process: a command, "
            f"which runs in another process, has nothing to {verb}"
        )
    missing = _missing(store, tables=command != "check")
    if missing is not None:
        store.close()
        raise UsageError(f"{missing}: check the URL (nothing to {verb} there)")
    return store


def _missing(store: SessionStore, tables: bool) -> str | None:
    """What the store's location lacks (a directory; with ``tables``, a SQL database or
    table), found without creating it; ``None`` when it is all there."""
    if isinstance(store, CachedStore):
        return _missing(store.store, tables)
    if isinstance(store, FileStore) and not os.path.isdir(store.directory):
        return f"no directory {store.directory}"
    sql = sys.modules.get("sessionware.stores._sql")  # loaded if the URL named a SQL store
    if tables and sql is not None and isinstance(store, sql.SQLStore):
        from .stores._sql_check import missing_table

        found = cast("SQLStore", store)
        return missing_table(found.engine, found.table)
    return None


# -- the commands ---------------------------------------------------------------------------


def clear_expired(store: SessionStore, dry_run: bool, out: TextIO) -> int:
    """Purge (or count, with ``dry_run``) and print one summary line; on a terminal a
    progress bar runs on stderr while the purge goes."""
    now = time.time()
    if dry_run:
        found = _count(store, now)
        out.write(f"would remove {found} expired session{_s(found)}\n")
        return 0
    if out.isatty() and sys.stderr.isatty():
        removed = _purge_with_bar(store, now)
    else:
        removed = store.clear_expired(now)
    out.write(f"removed {removed} expired session{_s(removed)}\n")
    return 0


def _count(store: SessionStore, now: float) -> int:
    try:
        return store.count_expired(now)
    except NotImplementedError:
        raise UsageError(f"{type(store).__name__} cannot count expired sessions") from None


def _purge_with_bar(store: SessionStore, now: float) -> int:
    """The purge under a tqdm bar: counted first (at the same ``now``) for its length,
    then moved by the store's progress reports."""
    from tqdm import tqdm

    try:
        total: int | None = store.count_expired(now)
    except NotImplementedError:
        total = None  # a counter without a length
    # A terminal that reports no size (some ptys) would get no bar at all from tqdm.
    size = shutil.get_terminal_size()
    bar = tqdm(
        total=total,
        desc="removing expired",
        unit=" sessions",
        file=sys.stderr,
        ncols=size.columns,
        nrows=size.lines,
    )
    with bar:

        def progress(removed: int) -> None:
            bar.update(removed - bar.n)

        removed = store.clear_expired(now, progress)
        if bar.total != removed:  # sessions renewed or purged elsewhere meanwhile
            bar.total = removed
            bar.n = removed
            bar.refresh()
    return removed


def check(store: SessionStore, out: TextIO) -> int:
    """Print the store's findings, one aligned row each."""
    try:
        findings = store.check()
    except NotImplementedError:
        raise UsageError(f"{type(store).__name__} cannot be checked") from None
    width = max((len(what) for what, _ in findings), default=0)
    for what, found in findings:
        out.write(f"{what:<{width}}  {found}\n")
    return 0


def sessions(store: SessionStore, user: str, out: TextIO) -> int:
    """A table of the user's live sessions, newest first (times in UTC)."""
    _need_users(store)
    infos = store.user_sessions(user)
    if not infos:
        out.write(
            f"user {user} has no live sessions (a session is listed while it lives, and "
            "only if the application set its user_key)\n"
        )
        return 0
    rows = [("id", "created", "updated", "expires")]
    rows += [
        (info.id, _when(info.created_at), _when(info.updated_at), _when(info.expires_at))
        for info in infos
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.write("  ".join(cells).rstrip())
        out.write("\n")
    return 0


def revoke(store: SessionStore, user: str, except_id: str | None, out: TextIO) -> int:
    """End the user's sessions, all of them (one atomic ``revoke_user``) or all but
    ``except_id`` (listed, then ended one by one by id)."""
    _need_users(store)
    if except_id is None:
        ended = store.revoke_user(user)
    else:
        ids = [info.id for info in store.user_sessions(user)]
        if except_id not in ids:
            raise UsageError(
                f"user {user} has no live session with id {except_id!r}; nothing was "
                "revoked (`sessionware sessions` lists the ids)"
            )
        ended = sum(store.revoke_session(user, one) for one in ids if one != except_id)
    out.write(f"revoked {ended} session{_s(ended)} of user {user}\n")
    return 0


def _need_users(store: SessionStore) -> None:
    if not store.supports_users:
        raise UsageError(f"{type(store).__name__} keeps no per-user index")


def _when(moment: dt.datetime) -> str:
    return moment.isoformat(sep=" ", timespec="seconds")


def _s(count: int) -> str:
    return "" if count == 1 else "s"
