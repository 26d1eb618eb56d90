"""How session data becomes bytes: a pluggable codec, JSON by default (never pickle)."""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Serializer(Protocol):
    """Turns a session's data dict into bytes and back."""

    def dumps(self, data: dict[str, Any]) -> bytes: ...

    def loads(self, raw: bytes) -> dict[str, Any]: ...


class JSONSerializer:
    """Compact JSON; safe to load from any source because it builds plain values only."""

    # One encoder for all calls: json.dumps() with options builds a new one every time.
    _encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def dumps(self, data: dict[str, Any]) -> bytes:
        return self._encode(data).encode()

    def loads(self, raw: bytes) -> dict[str, Any]:
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("session data is not a JSON object")
        return value
