"""What a ``FileStore`` file holds: a one-line JSON header, then the packed fields.

A file reads ``SW2\\n<header JSON>\\n<body>``. The header carries everything needed to
judge the file (its kind, timestamps, user, public id) and is plain JSON, so expiry, the
per-user index and ``clear_expired`` never touch the body and need no serializer: a
session whose data this process cannot decode is still kept until it expires. The body of
a record is ``pack_fields``; markers have none.

Files of the previous format, ``SW1\\n{"c":…,"e":…,"x":…}\\n<serializer bytes of the whole
dict>``, still load: their body is the JSON of the session's data, which is what
``unpack_fields`` reads.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import IO, Any, Literal

from .._errors import SessionTooLargeError
from .._expiry import Expiry
from .._keys import is_valid_key
from .._records import (
    Moved,
    PackedFields,
    Record,
    Stale,
    check_timestamp,
    pack_fields,
    unpack_fields,
)

# A session's file is named by the hex SHA-256 of its key (see ``FileStore``).
SESSION_FILE = re.compile(r"[0-9a-f]{64}\.session")

MAGIC = b"SW2\n"
OLD_MAGIC = b"SW1\n"
# The longest header a reader accepts (and a writer makes): a header is a few hundred
# bytes unless a user id is absurdly long; the bound keeps a foreign file from being
# read whole when only its header is wanted.
HEADER_LIMIT = 64 * 1024

Entry = Record | Stale | Moved
Kind = Literal["record", "stale", "moved"]

_encode_json = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: no raw newline


@dataclass(frozen=True, slots=True)
class Head:
    """A file's header: enough to judge the file without reading its body.

    ``until`` is when the file is dead (a record's ``expires_at``, a marker's ``until``);
    ``record`` is a record's meta with no fields; ``info`` its ``SessionInfo.id``
    (``None`` in the old format, which kept no user); ``target`` a ``Moved`` pointer's
    new key, sealed with the old key (see ``seal``).
    """

    kind: Kind
    until: float
    record: Record | None = None
    info: str | None = None
    target: str | None = None

    @property
    def user(self) -> str | None:
        return None if self.record is None else self.record.user


def file_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest() + ".session"


# -- writing --------------------------------------------------------------------------------


def encode_record(record: Record, info: str) -> bytes:
    """The file of a live record; ``info`` is its ``SessionInfo.id``."""
    header: dict[str, Any] = {
        "kind": "record",
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "expiry": None if record.expiry is None else record.expiry.to_json(),
        "key_at": record.key_at,
        "updated_at": record.updated_at,
        "user": record.user,
        "id": info,
    }
    # Fields read from a file go back as they were read: no unpacking, no re-encoding.
    fields = record.fields
    body = fields.blob if isinstance(fields, PackedFields) else pack_fields(fields)
    return _with_header(header) + body


def encode_stale(until: float) -> bytes:
    return _with_header({"kind": "stale", "until": until})


def encode_moved(key: str, new_key: str, until: float) -> bytes:
    return _with_header({"kind": "moved", "until": until, "target": seal(new_key, key)})


def _with_header(header: dict[str, Any]) -> bytes:
    line = _encode_json(header).encode("ascii") + b"\n"
    if len(line) > HEADER_LIMIT:
        raise SessionTooLargeError(
            "FileStore file header", len(line), HEADER_LIMIT, "use a shorter user id"
        )
    return MAGIC + line


# -- reading --------------------------------------------------------------------------------


def read_head(file: IO[bytes]) -> Head:
    """The header of an open file, leaving it at the body; ``ValueError`` if not ours."""
    magic = file.read(len(MAGIC))
    if magic not in (MAGIC, OLD_MAGIC):
        raise ValueError("not a session file")
    line = file.readline(HEADER_LIMIT)
    if not line.endswith(b"\n"):
        raise ValueError("truncated or oversized header")
    try:
        header = json.loads(line)
    except RecursionError as exc:
        raise ValueError("header nested too deeply") from exc
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    return _old_head(header) if magic == OLD_MAGIC else _head(header)


def _head(header: dict[str, Any]) -> Head:
    kind = header.get("kind")
    if kind == "stale":
        return Head("stale", check_timestamp(header.get("until")))
    if kind == "moved":
        target = header.get("target")
        if not isinstance(target, str):
            raise ValueError("pointer lacks its target")
        return Head("moved", check_timestamp(header.get("until")), target=target)
    if kind != "record":
        raise ValueError("unknown kind of file")
    expires_at = check_timestamp(header.get("expires_at"))
    record = Record(
        {},
        check_timestamp(header.get("created_at")),
        expires_at,
        Expiry.from_json(header.get("expiry")),
        _optional_timestamp(header.get("key_at")),
        _optional_timestamp(header.get("updated_at")),
        _optional_text(header.get("user")),
    )
    return Head("record", expires_at, record, _optional_text(header.get("id")))


def _old_head(header: dict[str, Any]) -> Head:
    created_at = check_timestamp(header.get("c"))
    expires_at = check_timestamp(header.get("e"))
    record = Record({}, created_at, expires_at, Expiry.from_json(header.get("x")))
    return Head("record", expires_at, record)


def _optional_timestamp(value: object) -> float | None:
    return None if value is None else check_timestamp(value)


def _optional_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("header text field is not a string")


def entry_of(head: Head, key: str, body: bytes | None) -> Entry:
    """The entry a file holds for ``key``; a record's fields come from ``body``, or are
    left empty when ``body`` is ``None`` (only the header was read)."""
    if head.kind == "stale":
        return Stale(head.until)
    if head.kind == "moved":
        assert head.target is not None  # set by _head for every pointer
        return Moved(unseal(head.target, key), head.until)
    assert head.record is not None  # set by _head for every record
    if body is None:
        return head.record
    meta = head.record
    return Record(
        unpack_fields(body),
        meta.created_at,
        meta.expires_at,
        meta.expiry,
        meta.key_at,
        meta.updated_at,
        meta.user,
    )


# -- the pointer's target, sealed with the old key ---------------------------------------------


def seal(new_key: str, key: str) -> str:
    """``new_key`` masked with a pad derived from ``key`` (hex).

    File names are hashes so that a listing or a backup of the directory gives no usable
    key; a pointer holding its target in clear would give one. Whoever loads the pointer
    holds the old key and so can unmask it.
    """
    raw = new_key.encode("ascii")
    return bytes(a ^ b for a, b in zip(raw, _pad(key, len(raw)), strict=True)).hex()


def unseal(sealed: str, key: str) -> str:
    raw = bytes.fromhex(sealed)
    target = bytes(a ^ b for a, b in zip(raw, _pad(key, len(raw)), strict=True))
    text = target.decode("ascii")  # UnicodeDecodeError is a ValueError
    if not is_valid_key(text):
        raise ValueError("pointer target is not a session key")
    return text


def _pad(key: str, size: int) -> bytes:
    return hashlib.shake_256(b"sessionware.file.moved:" + key.encode()).digest(size)
