"""How RedisStore lays sessions out in Redis, and how its replies are read back.

One HASH per session key, at ``prefix + key``, expiring (``PEXPIREAT``) at its ``e``:

- a live record: ``c`` created_at, ``e`` expires_at, ``x`` the custom expiry (JSON, if
  any), ``k`` key_at, ``t`` updated_at, ``u`` the user (if any), and one ``d:<name>``
  field per session key holding that field's bytes as given. Data fields always carry
  the ``d:`` prefix, so no session key collides with a meta field. Records written before
  ``k``, ``t`` and ``u`` existed load as they are;
- a marker: ``m`` = ``stale`` or ``moved``, ``e`` its ``until``, and for ``moved`` ``n``
  the key the session moved to; or ``m`` = ``claim``: a key a renewal under Redis
  Cluster reserved and has not filled yet (it loads as nothing).

The per-user index is a sorted set at ``prefix + "u:{" + user + "}"`` whose members are
session keys, scored with the server's clock when each was (re)added. The braces are a
Redis Cluster hash tag: a user's index lives in one slot whatever the prefix.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .._expiry import Expiry
from .._keys import key_fingerprint
from .._records import Change, Loaded, Moved, Record, Stale
from .._store import Written

logger = logging.getLogger("sessionware")

DATA = b"d:"
USERS = b"u:{"
#: The meta fields a listing reads (``HMGET``): expiry, marker, created, updated, user.
LISTED = (b"e", b"m", b"c", b"t", b"u")

Arg = bytes | str | int | float


def data_field(name: str) -> bytes:
    return DATA + name.encode("utf-8", "surrogatepass")


def index_name(prefix: bytes, user: str) -> bytes:
    return prefix + USERS + user.encode("utf-8", "surrogatepass") + b"}"


def index_user(prefix: bytes, name: bytes) -> str:
    """The user whose index ``name`` is (the inverse of ``index_name``)."""
    return name[len(prefix) + len(USERS) : -1].decode("utf-8", "surrogatepass")


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogatepass")


def _time(raw: bytes) -> float:
    """A stored timestamp; ``ValueError`` unless finite (a corrupt record must not live
    forever)."""
    value = float(raw)
    if value - value != 0.0:  # inf or nan
        raise ValueError("record timestamp is not finite")
    return value


def pexpireat(at: float) -> int:
    """Milliseconds for ``PEXPIREAT``; the scripts compute the same from ``e``."""
    return math.ceil(at * 1000)


def _expiry_json(expiry: Expiry) -> bytes:
    return json.dumps(expiry.to_json()).encode()


# -- what the scripts are given ---------------------------------------------------------------


def record_pairs(record: Record) -> list[Arg]:
    """The field/value pairs of a whole record, expires_at first."""
    pairs: list[Arg] = [b"e", record.expires_at, b"c", record.created_at]
    if record.expiry is not None:
        pairs += (b"x", _expiry_json(record.expiry))
    if record.key_at is not None:
        pairs += (b"k", record.key_at)
    if record.updated_at is not None:
        pairs += (b"t", record.updated_at)
    if record.user is not None:
        pairs += (b"u", record.user.encode("utf-8", "surrogatepass"))
    for name, raw in record.fields.items():
        pairs += (data_field(name), raw)
    return pairs


def update_args(change: Change, now: float) -> list[Arg]:
    """``UPDATE``'s arguments after the header (see its comment)."""
    deleted: list[Arg] = [data_field(name) for name in change.deleted]
    pairs: list[Arg] = [b"e", change.expires_at, b"t", now]
    if change.expiry_changed:
        if change.expiry is None:
            deleted.append(b"x")
        else:
            pairs += (b"x", _expiry_json(change.expiry))
    if change.user_changed:
        if change.user is None:
            deleted.append(b"u")
        else:
            pairs += (b"u", change.user.encode("utf-8", "surrogatepass"))
    for name, raw in change.set.items():
        pairs += (data_field(name), raw)
    cleared = b"1" if change.cleared else b"0"
    return [pexpireat(change.expires_at), cleared, len(deleted), *deleted, *pairs]


def renewed_pairs(pairs: Sequence[bytes], now: float) -> tuple[list[Arg], float, str | None]:
    """A record as ``RENEW_OUT`` returned it, ready for its new key: its pairs with
    ``k``/``t`` set to ``now``, its expires_at and its user."""
    fields = dict(zip(pairs[::2], pairs[1::2], strict=True))
    fields[b"k"] = fields[b"t"] = repr(now).encode()
    expires_at = _time(fields[b"e"])
    user = fields.get(b"u")
    out: list[Arg] = []
    for name, value in fields.items():
        out += (name, value)
    return out, expires_at, None if user is None else text(user)


# -- what Redis gives back --------------------------------------------------------------------


def written(reply: Any) -> Written:
    """A write script's reply: 1 done, 0 nothing live, or the pointer ``{target, until}``."""
    if reply == 1:
        return True
    if reply == 0:
        return False
    return Moved(text(reply[0]), float(reply[1]))


class Unreadable(ValueError):
    """A key under our prefix that is not a session hash of ours."""


def read(key: str, raw: Mapping[Any, Any] | Exception, now: float) -> Loaded:
    """What an ``HGETALL`` reply (or the error it raised) holds at ``now``.

    Anything unreadable loads as ``None``, with one WARNING that names the session only
    by its fingerprint; this never raises.
    """
    if not raw:
        return None
    try:
        if isinstance(raw, Exception):
            raise Unreadable("the key holds another Redis type")
        return decode(raw, now)
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, Unreadable) else type(exc).__name__
        logger.warning(
            "sessionware: Redis session %s is unreadable (%s); treated as absent",
            key_fingerprint(key),
            reason,
        )
        return None


def decode(raw: Mapping[bytes, bytes], now: float) -> Loaded:
    until = _time(raw[b"e"])
    if until <= now:
        return None
    kind = raw.get(b"m")
    if kind == b"stale":
        return Stale(until)
    if kind == b"moved":
        return Moved(text(raw[b"n"]), until)
    if kind == b"claim":
        return None
    if kind is not None:
        raise Unreadable("unknown marker")
    expiry = raw.get(b"x")
    key_at = raw.get(b"k")
    updated_at = raw.get(b"t")
    user = raw.get(b"u")
    return Record(
        {
            name[2:].decode("utf-8", "surrogatepass"): value
            for name, value in raw.items()
            if name[:2] == DATA
        },
        _time(raw[b"c"]),
        until,
        None if expiry is None else Expiry.from_json(json.loads(expiry)),
        None if key_at is None else _time(key_at),
        None if updated_at is None else _time(updated_at),
        None if user is None else text(user),
    )


def listed(meta: Sequence[Any] | Exception, now: float, user: str) -> Record | None:
    """The timing of a live record of ``user`` from an ``HMGET`` of ``LISTED``, or
    ``None`` for anything else (absent, dead, a marker, another user, unreadable)."""
    if isinstance(meta, Exception):
        return None
    until, kind, created, updated, owner = meta
    try:
        if kind is not None or owner is None or text(owner) != user:
            return None
        expires_at = _time(until)
        if expires_at <= now:
            return None
        created_at = _time(created)
        touched = None if updated is None else _time(updated)
    except (ValueError, TypeError):
        return None
    return Record({}, created_at, expires_at, updated_at=touched, user=user)
