"""How MemcachedStore lays sessions out: item names, item values, expiry times, sizes.

One item per session key. Its value is a small header and, for a record, the session's
fields packed into one blob (``pack_fields``)::

    b"swm1" + kind + JSON header + b"\\n" + packed fields

``kind`` is ``r`` (a record), ``s`` (a ``Stale`` marker) or ``m`` (a ``Moved`` pointer).
A record's header holds its timing, its user and the *generation* of that user's index
item (see ``_memcached_flows``). One item per user holds that user's index.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from .._errors import SessionStoreError, SessionTooLargeError
from .._expiry import Expiry
from .._records import (
    Moved,
    PackedFields,
    Record,
    Stale,
    check_timestamp,
    pack_fields,
    unpack_fields,
)

MAGIC = b"swm1"
_RECORD, _STALE, _MOVED = b"r", b"s", b"m"
_HEADER_AT = len(MAGIC) + 1

#: Memcached reads an expiry above 30 days as a Unix time, below as seconds from now.
THIRTY_DAYS = 2_592_000
#: The largest Unix time Memcached accepts (its expiry is a 32-bit signed integer).
_LAST_UNIX_TIME = 2**31 - 1
#: A second more than asked, so Memcached never drops an item the caller's clock still
#: calls live (Memcached counts whole seconds); the header's times are what count.
_SLACK = 1

#: Memcached's own bytes per item beside the name and the value (its item header, flags,
#: CAS and line ends; measured on 1.6: an item fits while name + value + 59 <= the limit).
ITEM_OVERHEAD = 64
#: What ``max_data_bytes`` leaves for the name and the header: the middleware compares
#: the fields' total with it; the exact check is ``check_size`` on the whole item.
HEADER_RESERVE = 2048
DEFAULT_MAX_ITEM_BYTES = 1024 * 1024

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,128}")
_PREFIX = re.compile(r"[\x21-\x7e]{0,100}")
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def check_prefix(prefix: str) -> bytes:
    """The prefix as bytes; ``ValueError`` unless it can start a Memcached key."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "MemcachedStore prefix must be at most 100 printable ASCII characters "
            f"without spaces, not {prefix!r}"
        )
    return prefix.encode("ascii")


def session_name(prefix: bytes, key: str) -> bytes:
    """The item of a session key: the key itself when Memcached allows it, else a hash."""
    if _PLAIN_KEY.fullmatch(key):
        return prefix + key.encode("ascii")
    return prefix + b"h:" + _digest(key, 64)


def index_name(prefix: bytes, user: str) -> bytes:
    """The index item of a user (hashed: a user id may hold anything)."""
    return prefix + b"user:" + _digest(user, 32)


def is_index_name(prefix: bytes, name: bytes) -> bool:
    return name.startswith(prefix + b"user:")


def _digest(text: str, size: int) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:size].encode()


def exptime(until: float, clock: float) -> int:
    """Memcached's expiry for an item that must live until ``until`` (a Unix time).

    Up to 30 days ahead it is a number of seconds (robust to a server whose clock is
    off); beyond, Memcached's rule wants the Unix time itself. An item already dead gets
    one second, and times past 2038 none (0, no expiry): the header still rules.
    """
    remaining = math.ceil(until - clock) + _SLACK
    if remaining <= THIRTY_DAYS:
        return max(remaining, 1)
    absolute = math.ceil(until) + _SLACK
    return absolute if absolute <= _LAST_UNIX_TIME else 0


def check_size(size: int, limit: int) -> None:
    """``SessionTooLargeError`` for an item of ``size`` bytes (name, value, overhead)."""
    if size > limit:
        raise SessionTooLargeError(
            "the session's Memcached item",
            size,
            limit,
            "store less in the session, or raise Memcached's item size limit (-I) and "
            "MemcachedStore(max_item_bytes=...) with it",
        )


# -- session items --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """A session item as read: a record (with its user index generation) or a marker."""

    value: Record | Stale | Moved
    generation: str | None = None


def pack_record(record: Record) -> bytes:
    """The fields' blob; a record loaded from here keeps its blob, so a move copies it."""
    fields = record.fields
    return fields.blob if isinstance(fields, PackedFields) else pack_fields(fields)


def encode_record(record: Record, generation: str | None, blob: bytes) -> bytes:
    header = {
        "c": record.created_at,
        "e": record.expires_at,
        "x": None if record.expiry is None else record.expiry.to_json(),
        "k": record.key_at,
        "t": record.updated_at,
        "u": record.user,
        "g": generation,
    }
    return b"".join((MAGIC, _RECORD, _ENCODE(header).encode(), b"\n", blob))


def encode_marker(marker: Stale | Moved) -> bytes:
    header: dict[str, Any] = {"until": marker.until}
    kind = _STALE
    if isinstance(marker, Moved):
        header["key"] = marker.key
        kind = _MOVED
    return b"".join((MAGIC, kind, _ENCODE(header).encode(), b"\n"))


def decode(value: bytes | None) -> Entry | None:
    """The item's entry; ``None`` for no item or one that is not ours or is corrupt."""
    if value is None or not value.startswith(MAGIC):
        return None
    kind = value[len(MAGIC) : _HEADER_AT]
    end = value.find(b"\n", _HEADER_AT)
    try:
        header = json.loads(value[_HEADER_AT:end]) if end > 0 else None
        if not isinstance(header, dict):
            return None
        if kind == _RECORD:
            return _record(header, value[end + 1 :])
        until = check_timestamp(header.get("until"))
        if kind == _STALE:
            return Entry(Stale(until))
        key = header.get("key")
        if kind == _MOVED and isinstance(key, str):
            return Entry(Moved(key, until))
    except ValueError:
        return None
    return None


def _record(header: dict[str, Any], blob: bytes) -> Entry | None:
    user, generation = header.get("u"), header.get("g")
    if not isinstance(user, str | None) or not isinstance(generation, str | None):
        return None
    record = Record(
        unpack_fields(blob),
        check_timestamp(header.get("c")),
        check_timestamp(header.get("e")),
        Expiry.from_json(header.get("x")),
        _optional_time(header.get("k")),
        _optional_time(header.get("t")),
        user,
    )
    return Entry(record, generation)


def _optional_time(value: object) -> float | None:
    return None if value is None else check_timestamp(value)


# -- user index items -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Index:
    """A user's index item: its generation, and each listed key with when it was added.

    A record of the user counts as live only while the index item holds the generation
    written in the record: an index item that Memcached evicts takes its sessions along.
    """

    user: str
    generation: str
    keys: dict[str, float]


def new_generation() -> str:
    return secrets.token_hex(8)


def encode_index(index: Index, name: bytes, limit: int) -> bytes:
    value = _ENCODE({"u": index.user, "g": index.generation, "k": index.keys}).encode()
    if len(name) + len(value) + ITEM_OVERHEAD > limit:
        raise SessionStoreError(
            "Memcached session store: a user's index is full (too many live sessions)"
        )
    return value


def decode_index(value: bytes | None) -> Index | None:
    if value is None:
        return None
    try:
        raw = json.loads(value)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    user, generation, keys = raw.get("u"), raw.get("g"), raw.get("k")
    if not (isinstance(user, str) and isinstance(generation, str) and isinstance(keys, dict)):
        return None
    try:
        return Index(user, generation, {str(k): check_timestamp(t) for k, t in keys.items()})
    except ValueError:
        return None
