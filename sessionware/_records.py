"""What stores keep, what a request changes, and the one pure merge between them.

A session's data reaches a store as *fields*: one ``bytes`` value per session key,
already encoded by the middleware's serializer. A store keeps fields (a hash, a document,
or one packed blob) and never decodes them, so it needs no serializer, and a save is a
``Change`` (fields set, names deleted, cleared or not), never a snapshot: two concurrent
requests on one session keep each other's keys.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from ._expiry import Expiry

Fields = Mapping[str, bytes]


class Record(NamedTuple):
    """One live session as a store keeps it (immutable: a store may hand the same record
    to many requests).

    ``created_at`` is when the session was first saved (``absolute_max_age`` counts from
    it), ``key_at`` when its current key was issued (``renew_after`` counts from it),
    ``updated_at`` its last write, ``expires_at`` when the store may forget it, ``expiry``
    what ``set_expiry()`` asked for, and ``user`` the value of the middleware's
    ``user_key`` as a string (the per-user index), or ``None``.
    """

    fields: Fields
    created_at: float
    expires_at: float
    expiry: Expiry | None = None
    key_at: float | None = None
    updated_at: float | None = None
    user: str | None = None

    @property
    def issued_at(self) -> float:
        """When the current key was issued (``key_at``, else ``created_at``)."""
        return self.created_at if self.key_at is None else self.key_at

    @property
    def touched_at(self) -> float:
        """The last write (``updated_at``, else ``created_at``)."""
        return self.created_at if self.updated_at is None else self.updated_at


class Change(NamedTuple):
    """What one request did to a session; ``apply_change`` turns a record into the next.

    Order of application: ``cleared`` drops every field, then ``deleted`` names are
    removed, then ``set`` fields are written. ``user`` is applied only when
    ``user_changed``; ``expiry`` only when ``expiry_changed``.
    """

    set: Fields = MappingProxyType({})
    deleted: frozenset[str] = frozenset()
    cleared: bool = False
    expiry_changed: bool = False
    expiry: Expiry | None = None
    expires_at: float = 0.0
    user_changed: bool = False
    user: str | None = None
    #: What ``set`` decodes to, when the middleware knows it without decoding (``None``:
    #: not known). Only a store that keeps ``KeptFields`` uses it; others ignore it.
    decoded: Mapping[str, Any] | None = None

    @property
    def touches_data(self) -> bool:
        return bool(self.set or self.deleted or self.cleared)


class Stale(NamedTuple):
    """What ``load`` gives for a key that was flushed, rotated away or revoked lately.

    The store remembers the key until ``until`` (the middleware's ``stale_key_window``)
    so a parallel request still carrying it is told apart from a stranger's key.
    """

    until: float


class Moved(NamedTuple):
    """What ``load`` gives for a key renewed lately: its session now lives under ``key``.

    A forward pointer, kept until ``until`` (``renew_grace``).
    """

    key: str
    until: float


Loaded = Record | Stale | Moved | None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One signed-in session of a user, for a "your devices" page.

    ``id`` is an opaque handle derived from the key one way: it names the session for
    ``revoke_session`` but cannot be turned back into the key.
    """

    id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    expires_at: dt.datetime


def session_info(info_id: str, record: Record) -> SessionInfo:
    return SessionInfo(
        info_id, _utc(record.created_at), _utc(record.touched_at), _utc(record.expires_at)
    )


def newest_first(infos: list[SessionInfo]) -> list[SessionInfo]:
    return sorted(infos, key=lambda info: (info.created_at, info.updated_at), reverse=True)


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


class KeptFields(dict[str, bytes]):
    """The fields of a record that a store keeps as a Python object and hands to every
    load (``MemoryStore``), with what they decode to once that is known (``decoded``).

    The default serializer's decode of the same bytes is then a copy of ``decoded``
    (``FieldCodec.decode``), which costs a fraction of parsing them. The store never
    decodes anything itself: ``decoded`` comes from the middleware (``Change.decoded``,
    or the first decode), and is never handed out, only copied.
    """

    __slots__ = ("decoded",)
    decoded: dict[str, Any] | None


def kept_fields(fields: Fields, decoded: dict[str, Any] | None) -> KeptFields:
    """``fields`` as ``KeptFields`` (dict's own constructor: no Python-level ``__init__``)."""
    kept = KeptFields(fields)
    kept.decoded = decoded
    return kept


def apply_change(record: Record, change: Change, now: float) -> Record:
    """The merge every store applies atomically: clear, then delete, then set."""
    old = record.fields
    fields = KeptFields() if isinstance(old, KeptFields) else {}
    if not change.cleared:
        fields.update(old)
    for name in change.deleted:
        fields.pop(name, None)
    fields.update(change.set)
    if isinstance(old, KeptFields) and isinstance(fields, KeptFields):
        fields.decoded = _merged_decoded(old.decoded, change)
    return Record(
        fields,
        record.created_at,
        change.expires_at,
        change.expiry if change.expiry_changed else record.expiry,
        record.key_at,
        now,
        change.user if change.user_changed else record.user,
    )


def _merged_decoded(decoded: dict[str, Any] | None, change: Change) -> dict[str, Any] | None:
    """``apply_change`` on what the fields decode to: the same merge, so the same order."""
    known = change.decoded
    if known is None:
        if change.set:
            return None
        known = {}
    if change.cleared:
        return dict(known)
    if decoded is None:
        return None
    merged = dict(decoded)
    for name in change.deleted:
        merged.pop(name, None)
    merged.update(known)
    return merged


# -- fields packed into one blob, for stores that keep a session whole ---------------------

_BINARY = b"\x00swf1"
_LENGTH = struct.Struct(">I")


def pack_fields(fields: Fields) -> bytes:
    """One blob for all fields; ``unpack_fields`` reverses it.

    Fields that are single-key JSON objects (what the default serializer makes) are
    merged into one JSON object, exactly the JSON of the session's data, so a database
    column stays readable and older rows load as they are. Other fields go into a small
    length-prefixed binary container.
    """
    parts = []
    for name, raw in fields.items():
        if not _is_json_field(name, raw):
            return _pack_binary(fields)
        parts.append(raw[1:-1])
    return b"{" + b",".join(parts) + b"}"


def _is_json_field(name: str, raw: bytes) -> bool:
    if raw[-1:] != b"}" or '"' in name or "\\" in name or not name.isprintable():
        return False
    if name == "$e":  # its field is the escape {"$e": ["$e", value]}, whole only
        return False
    return raw.startswith(b'{"' + name.encode("utf-8", "surrogatepass") + b'":')


def _pack_binary(fields: Fields) -> bytes:
    out = [_BINARY]
    for name, raw in fields.items():
        encoded = name.encode("utf-8", "surrogatepass")
        out += [_LENGTH.pack(len(encoded)), encoded, _LENGTH.pack(len(raw)), raw]
    return b"".join(out)


def unpack_fields(blob: bytes) -> PackedFields:
    """The fields in a blob made by ``pack_fields``; ``ValueError`` if it is not one."""
    if not blob.startswith(_BINARY) and blob[:1] != b"{":
        raise ValueError("not a packed session")
    return PackedFields(blob)


class PackedFields(Mapping[str, bytes]):
    """Fields read lazily from a packed blob: decoders that can parse the blob whole
    (``json_blob``) never split it into fields."""

    __slots__ = ("_fields", "blob")

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self._fields: dict[str, bytes] | None = None

    @property
    def json_blob(self) -> bytes | None:
        return self.blob if self.blob[:1] == b"{" else None

    def _unpacked(self) -> dict[str, bytes]:
        if self._fields is None:
            self._fields = _split(self.blob)
        return self._fields

    def __getitem__(self, name: str) -> bytes:
        return self._unpacked()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._unpacked())

    def __len__(self) -> int:
        return len(self._unpacked())


def _split(blob: bytes) -> dict[str, bytes]:
    if blob[:1] == b"{":
        try:
            data = json.loads(blob)
        except (ValueError, RecursionError) as exc:
            raise ValueError("packed session is not valid JSON") from exc
        if not isinstance(data, dict):
            raise ValueError("packed session is not a JSON object")
        return {name: _json_field(name, value) for name, value in data.items()}
    fields: dict[str, bytes] = {}
    view, at = memoryview(blob), len(_BINARY)
    try:
        while at < len(blob):
            (size,) = _LENGTH.unpack_from(view, at)
            name = bytes(view[at + 4 : at + 4 + size]).decode("utf-8", "surrogatepass")
            at += 4 + size
            (size,) = _LENGTH.unpack_from(view, at)
            if at + 4 + size > len(blob):
                raise ValueError("truncated packed session")
            fields[name] = bytes(view[at + 4 : at + 4 + size])
            at += 4 + size
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError("corrupt packed session") from exc
    return fields


_ENCODE_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json_field(name: str, value: Any) -> bytes:
    return _ENCODE_JSON({name: value}).encode("utf-8", "surrogatepass")


def check_timestamp(value: object) -> float:
    """A finite float, or ``ValueError``: a corrupt record must never live forever."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("record lacks its timestamps")
    try:
        result = float(value)
    except OverflowError as exc:
        raise ValueError("record timestamp out of range") from exc
    if not math.isfinite(result):
        raise ValueError("record timestamp is not finite")
    return result
