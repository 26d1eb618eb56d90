"""The stored record, the change a request made, and the one pure merge between them.

Stores save a ``Change`` (what this request set, deleted or cleared), never a snapshot,
so two concurrent requests on one session keep each other's keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._expiry import Expiry
from ._serializers import Serializer

_MAGIC = b"SW1\n"


@dataclass(frozen=True, slots=True)
class Record:
    """One session as a store keeps it."""

    data: dict[str, Any]
    created_at: float
    expires_at: float
    expiry: Expiry | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What one request did to a session; ``apply_change`` turns a record into the next."""

    set: Mapping[str, Any] = field(default_factory=dict)
    deleted: frozenset[str] = frozenset()
    cleared: bool = False
    expiry_changed: bool = False
    expiry: Expiry | None = None
    expires_at: float = 0.0

    @property
    def touches_data(self) -> bool:
        return bool(self.set or self.deleted or self.cleared)


def apply_change(record: Record, change: Change) -> Record:
    """The merge every store applies under its own lock: clear, then delete, then set."""
    data = {} if change.cleared else dict(record.data)
    for key in change.deleted:
        data.pop(key, None)
    data.update(change.set)
    expiry = change.expiry if change.expiry_changed else record.expiry
    return Record(data, record.created_at, change.expires_at, expiry)


def pack_meta(record: Record) -> bytes:
    """The record's timing fields as compact JSON, for stores that keep them beside the data."""
    meta: dict[str, Any] = {"c": record.created_at, "e": record.expires_at}
    if record.expiry is not None:
        meta["x"] = record.expiry.to_json()
    return json.dumps(meta, separators=(",", ":")).encode()


def unpack_meta(raw: bytes) -> tuple[float, float, Expiry | None]:
    """Inverse of ``pack_meta``; raises ``ValueError`` on anything malformed."""
    try:
        meta = json.loads(raw)
    except RecursionError as exc:
        raise ValueError("record meta is nested too deeply") from exc
    if not isinstance(meta, dict):
        raise ValueError("record meta is not an object")
    return _timestamp(meta.get("c")), _timestamp(meta.get("e")), Expiry.from_json(meta.get("x"))


def _timestamp(value: object) -> float:
    """A finite float, or ``ValueError``: a corrupt record must never live forever."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("record meta lacks its timestamps")
    try:
        result = float(value)
    except OverflowError as exc:
        raise ValueError("record timestamp out of range") from exc
    if not math.isfinite(result):
        raise ValueError("record timestamp is not finite")
    return result


def pack_record(record: Record, serializer: Serializer) -> bytes:
    """One blob for stores that keep a record whole (files, memory)."""
    return _MAGIC + pack_meta(record) + b"\n" + serializer.dumps(record.data)


def unpack_record(raw: bytes, serializer: Serializer) -> Record:
    """Inverse of ``pack_record``; raises ``ValueError`` for a corrupt or foreign blob."""
    if not raw.startswith(_MAGIC):
        raise ValueError("not a sessionware record")
    meta, sep, body = raw[len(_MAGIC) :].partition(b"\n")
    if not sep:
        raise ValueError("truncated sessionware record")
    created, expires, expiry = unpack_meta(meta)
    try:
        data = serializer.loads(body)
    except Exception as exc:  # a custom serializer may raise anything on foreign bytes
        raise ValueError(f"session data does not decode: {exc.__class__.__name__}") from exc
    if not isinstance(data, dict):
        raise ValueError("session data is not a mapping")
    return Record(data, created, expires, expiry)
