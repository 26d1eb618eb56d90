"""Every statement ``SQLStore`` runs, built once per table, and the rows they carry.

Nothing here does I/O: the store executes these objects, and an executor on an async
driver can run the very same ones with the same parameters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .._expiry import Expiry
from .._records import Loaded, Moved, Record, Stale, check_timestamp, unpack_fields
from ._sql_schema import MOVED, RECORD, STALE, USER_ID_BYTES

_KEY: sa.BindParameter[str] = sa.bindparam("k")
_KEYS: sa.BindParameter[list[str]] = sa.bindparam("keys", expanding=True)
_NOW: sa.BindParameter[float] = sa.bindparam("now")
_USER: sa.BindParameter[str] = sa.bindparam("u")


class SessionStatements:
    """The statements of one session table; parameter names are those of the helpers
    below (``k`` the key, ``now`` the clock, ``v_*`` the values written)."""

    def __init__(self, table: sa.Table, dialect: str) -> None:
        c = table.c
        this = c.session_key == _KEY
        live = c.expires_at > _NOW
        is_record = c.kind == RECORD
        in_keys = c.session_key.in_(_KEYS)

        #: The row of a key, record or marker: a load is this one statement.
        self.load = sa.select(
            c.kind,
            c.target,
            c.data,
            c.created_at,
            c.expires_at,
            c.expiry,
            c.key_at,
            c.updated_at,
            c.user_id,
        ).where(this, live)
        #: The same, holding the row lock until the transaction ends.
        self.load_locked = self.load.with_for_update()
        #: What a write that found no live record tells its caller (a pointer, or not).
        self.peek = sa.select(c.kind, c.target, c.expires_at).where(this, live)

        values: dict[str, Any] = {
            "session_key": _KEY,
            "kind": RECORD,
            "target": None,
            "data": sa.bindparam("v_data"),
            "created_at": sa.bindparam("v_created"),
            "expires_at": sa.bindparam("v_expires"),
            "expiry": sa.bindparam("v_expiry"),
            "key_at": sa.bindparam("v_key_at"),
            "updated_at": sa.bindparam("v_updated"),
            "user_id": sa.bindparam("v_user"),
        }
        replaced = {name: value for name, value in values.items() if name != "session_key"}
        #: Write a record under a key no live row holds. On PostgreSQL and SQLite one
        #: statement: a dead row (expired record or marker) under the key is replaced,
        #: a live one makes it change nothing (rowcount 0). On MySQL a plain INSERT, and
        #: ``replace_dead`` when the key turns out taken.
        self.insert: sa.Insert
        self.replace_dead: sa.Update | None = None
        if dialect in ("postgresql", "sqlite"):
            flavour = postgresql.insert if dialect == "postgresql" else sqlite.insert
            upsert = flavour(table).values(values)
            self.insert = upsert.on_conflict_do_update(
                index_elements=[c.session_key],
                set_={name: upsert.excluded[name] for name in replaced},
                where=c.expires_at <= _NOW,
            ).execution_options(preserve_rowcount=True)  # kept for INSERT only on request
        else:
            self.insert = sa.insert(table).values(values)
            self.replace_dead = sa.update(table).where(this, c.expires_at <= _NOW).values(replaced)

        #: Write the merged data of a record read under lock.
        self.write = (
            sa.update(table)
            .where(this)
            .values(
                data=sa.bindparam("v_data"),
                expires_at=sa.bindparam("v_expires"),
                expiry=sa.bindparam("v_expiry"),
                updated_at=_NOW,
                user_id=sa.bindparam("v_user"),
            )
        )
        #: A save that changes no data: one guarded UPDATE, by (expiry, user) changed.
        self.touch = {
            (expiry, user): _touch(table, this & is_record & live, expiry, user)
            for expiry in (False, True)
            for user in (False, True)
        }

        # Ending a key: its row becomes a marker. The user id stays, so a revocation
        # racing the rotation or renewal that ended the key can follow ``target``.
        ending: dict[str, Any] = {
            "kind": sa.bindparam("v_kind"),
            "target": sa.bindparam("v_target"),
            "expires_at": sa.bindparam("v_until"),
            "data": b"",
            "expiry": None,
        }
        self.end = sa.update(table).where(this, is_record, live).values(ending)
        self.forget = sa.delete(table).where(this, is_record, live)
        self.end_many = sa.update(table).where(in_keys, is_record, live).values(ending)
        self.forget_many = sa.delete(table).where(in_keys, is_record, live)
        self.end_of_user = self.end.where(c.user_id == _USER)
        self.forget_of_user = self.forget.where(c.user_id == _USER)

        #: The live records of a user, for the listing.
        self.user_sessions = sa.select(
            c.session_key, c.created_at, c.updated_at, c.expires_at
        ).where(c.user_id == _USER, is_record, live)
        # Every row of a user, markers too (see ``ending``), locked for a revocation; and
        # the rows its markers lead to.
        revoked = sa.select(c.session_key, c.kind, c.target, c.expires_at)
        self.user_rows_locked = revoked.where(c.user_id == _USER).with_for_update()
        self.followed_locked = revoked.where(in_keys, c.user_id == _USER).with_for_update()

        self.expired_keys = sa.select(c.session_key).where(c.expires_at <= _NOW)
        self.delete_expired = sa.delete(table).where(in_keys, c.expires_at <= _NOW)
        self.count_expired = sa.select(sa.func.count()).where(c.expires_at <= _NOW)


def _touch(table: sa.Table, guard: sa.ColumnElement[bool], expiry: bool, user: bool) -> sa.Update:
    values: dict[str, Any] = {"expires_at": sa.bindparam("v_expires"), "updated_at": _NOW}
    if expiry:
        values["expiry"] = sa.bindparam("v_expiry")
    if user:
        values["user_id"] = sa.bindparam("v_user")
    return sa.update(table).where(guard).values(values)


# -- rows in -------------------------------------------------------------------------------


def loaded(row: Sequence[Any]) -> Loaded:
    """The entry a ``load`` row holds; ``ValueError`` when it cannot be read."""
    kind, target, data, created_at, expires_at, expiry, key_at, updated_at, user = row
    until = check_timestamp(expires_at)
    if kind != RECORD:
        return _marker(kind, target, until)
    return Record(
        unpack_fields(bytes(data)),
        check_timestamp(created_at),
        until,
        _expiry(expiry),
        None if key_at is None else check_timestamp(key_at),
        None if updated_at is None else check_timestamp(updated_at),
        user,
    )


def peeked(row: Sequence[Any] | None) -> Moved | bool:
    """What a write that found no live record returns: the pointer there, or ``False``."""
    if row is None or row[0] != MOVED:
        return False
    entry = _marker(*row)
    return entry if isinstance(entry, Moved) else False


def _marker(kind: str, target: str | None, until: float) -> Stale | Moved:
    if kind == STALE:
        return Stale(until)
    if kind == MOVED and target:
        return Moved(target, until)
    raise ValueError(f"unknown row kind {kind!r}" if kind != MOVED else "pointer lacks target")


def _expiry(raw: str | None) -> Expiry | None:
    return None if raw is None else Expiry.from_json(json.loads(raw))


# -- rows out ------------------------------------------------------------------------------


def record_values(record: Record, blob: bytes) -> dict[str, Any]:
    """The ``v_*`` parameters that write ``record`` with its fields packed as ``blob``."""
    return {
        "v_data": blob,
        "v_created": record.created_at,
        "v_expires": record.expires_at,
        "v_expiry": pack_expiry(record.expiry),
        "v_key_at": record.key_at,
        "v_updated": record.updated_at,
        "v_user": checked_user(record.user),
    }


def ending_values(kind: str, until: float, target: str | None = None) -> dict[str, Any]:
    """The parameters of ``end``/``end_many``: the marker a key becomes."""
    return {"v_kind": kind, "v_until": until, "v_target": target}


def pack_expiry(expiry: Expiry | None) -> str | None:
    return None if expiry is None else json.dumps(expiry.to_json(), separators=(",", ":"))


def checked_user(user: str | None) -> str | None:
    """The user id as the index column takes it; ``ValueError`` if it does not fit."""
    if user is not None and len(user.encode("utf-8", "surrogatepass")) > USER_ID_BYTES:
        raise ValueError(
            f"a user id (user_key) is at most {USER_ID_BYTES} bytes in the SQL store's "
            "index, UTF-8 encoded"
        )
    return user
