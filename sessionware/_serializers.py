"""How session values become bytes: a pluggable serializer, tagged JSON by default.

Stores never see Python values: the lifecycle encodes each session key on its own into a
*field* (``serializer.dumps({name: value})``) and stores keep those bytes, so every store,
``MemoryStore`` included, gives back exactly what the serializer gives back, and a value
that cannot be encoded fails at save, before any store call, naming its key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, cast, runtime_checkable

from ._errors import SessionSerializationError
from ._records import KeptFields
from ._tagged import ESCAPE, Unserializable, fresh_copy, tag, untag


@runtime_checkable
class Serializer(Protocol):
    """Turns a dict of session data into bytes and back (never pickle by default)."""

    def dumps(self, data: dict[str, Any]) -> bytes: ...

    def loads(self, raw: bytes) -> dict[str, Any]: ...


class JSONSerializer:
    """Compact JSON that also round-trips datetime, date, time, timedelta, UUID, Decimal,
    bytes, tuple, set and dicts with non-str keys (see ``_tagged``); plain JSON values
    encode to plain JSON. Safe to load from any source: it builds plain values only."""

    def dumps(self, data: dict[str, Any]) -> bytes:
        try:
            return _encode(tag(data)).encode("utf-8", "surrogatepass")
        except RecursionError:
            raise Unserializable(data, "a value contains itself (or nests too deeply)") from None

    def loads(self, raw: bytes) -> dict[str, Any]:
        value = _decode(raw, b'"$' in raw)
        if not isinstance(value, dict):
            raise ValueError("session data is not a JSON object")
        return value


def dumps_plain(value: dict[str, Any]) -> bytes:
    """``JSONSerializer().dumps(value)`` for a value ``plain_copy`` accepts: it needs no
    tag, so the walk that looks for values to tag is skipped."""
    return _encode(value).encode("utf-8", "surrogatepass")


# The encoder and decoder json.dumps/json.loads would build, made once. Each call of
# those rebuilds its C encoder (and sniffs the encoding of bytes) first, which costs more
# than encoding a session field. ``tag`` has already refused values that contain
# themselves, so the encoder needs no circular-reference bookkeeping.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_C_ENCODE = getattr(json.encoder, "c_make_encoder", None)
_ONE_SHOT = (
    None
    if _C_ENCODE is None
    else _C_ENCODE(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
)


def _encode(value: Any) -> str:
    if _ONE_SHOT is None:  # pragma: no cover - Pythons without json's C accelerator
        return _ENCODER.encode(value)
    return "".join(_ONE_SHOT(value, 0))


_PLAIN_DECODER = json.JSONDecoder()
_TAGGED_DECODER = json.JSONDecoder(object_hook=untag)


def _decode(raw: bytes, tagged: bool) -> Any:
    """``json.loads(raw)``, with ``untag`` when ``tagged``, minus its per-call setup."""
    decoder = _TAGGED_DECODER if tagged else _PLAIN_DECODER
    if raw[:1] != b"{":  # whitespace, a byte-order mark, another encoding: json's own way
        return json.loads(raw, object_hook=untag) if tagged else json.loads(raw)
    text = raw.decode("utf-8", "surrogatepass")  # as json.loads does for UTF-8
    try:
        value, end = cast(Any, decoder).scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):  # trailing data, or not JSON: the full decode raises the error
        return decoder.decode(text)
    return value


class FieldCodec:
    """Encodes session values field by field with one serializer, and decodes records."""

    __slots__ = ("_fast", "serializer")

    def __init__(self, serializer: Serializer) -> None:
        self.serializer = serializer
        self._fast = type(serializer) is JSONSerializer

    @property
    def tagged_json(self) -> bool:
        """Whether the serializer is the default one, whose decoded values are known."""
        return self._fast

    def check(self) -> None:
        """The serializer must give bytes: checked once, at construction."""
        try:
            raw = self.serializer.dumps({})
        except Exception as exc:
            raise ValueError(f"serializer.dumps({{}}) failed: {exc!r}") from exc
        if not isinstance(raw, bytes):
            raise TypeError(
                f"serializer.dumps() must return bytes, not {type(raw).__name__} "
                "(wrap it: .encode() a str result)"
            )

    def encode(self, name: str, value: Any) -> bytes:
        """One field; ``SessionSerializationError`` names the key and the value's type."""
        try:
            raw = self.serializer.dumps({name: value})
        except Unserializable as exc:
            raise SessionSerializationError(name, exc.value_type, str(exc)) from exc
        except (TypeError, ValueError, OverflowError) as exc:
            raise SessionSerializationError(name, type(value).__name__, str(exc)) from exc
        if not isinstance(raw, bytes):
            raise SessionSerializationError(
                name, type(value).__name__, "the serializer did not return bytes"
            )
        return raw

    def encode_all(self, values: Mapping[str, Any]) -> dict[str, bytes]:
        encode = self.encode
        return {name: encode(name, value) for name, value in values.items()}

    def decode(self, fields: Mapping[str, bytes]) -> dict[str, Any]:
        """The values of a record's fields; ``ValueError`` if any is not ours."""
        if type(fields) is KeptFields and self._fast:
            # Fields a store hands out again: decoded once, then copied (the same values).
            decoded = fields.decoded
            if decoded is None:
                decoded = fields.decoded = self._decode_fields(fields)
            copied: dict[str, Any] = fresh_copy(decoded)
            return copied
        return self._decode_fields(fields)

    def _decode_fields(self, fields: Mapping[str, bytes]) -> dict[str, Any]:
        blob = getattr(fields, "json_blob", None)
        if blob is not None:
            # A store kept the fields as one JSON object: one parse serves them all.
            return self._loads(blob)
        if self._fast and fields:
            data = self._decode_joined(fields)
            if data is not None:
                return data
        data = {}
        for name, raw in fields.items():
            item = self._loads(raw)
            if name not in item:
                raise ValueError("a field does not hold its own key")
            data[name] = item[name]
        return data

    def _decode_joined(self, fields: Mapping[str, bytes]) -> dict[str, Any] | None:
        """Single-key JSON objects joined into one object, parsed once (``None``: not so).

        A field that is not such an object makes the joined text fail to parse or name
        other keys, and the fields are then decoded one by one.
        """
        if ESCAPE in fields:
            return None  # its field is {"$e": ["$e", value]}: joined, the escape is lost
        joined = b"{" + b",".join([raw[1:-1] for raw in fields.values()]) + b"}"
        try:
            data = _decode(joined, b'"$' in joined)
        except (ValueError, RecursionError):
            return None
        if type(data) is not dict or len(data) != len(fields) or data.keys() != fields.keys():
            return None
        return data

    def _loads(self, raw: bytes) -> dict[str, Any]:
        try:
            data = self.serializer.loads(raw)
        except RecursionError as exc:
            raise ValueError("session data nests too deeply") from exc
        except Exception as exc:  # a custom serializer may raise anything on foreign bytes
            raise ValueError(f"session data does not decode: {exc.__class__.__name__}") from exc
        if not isinstance(data, dict):
            raise ValueError("session data is not a mapping")
        return data
