"""Tagged values: how plain JSON carries the Python types sessions commonly hold.

A value JSON has no type for becomes a one-key object whose key names the type::

    tuple {"$t": [...]}        set {"$s": [...]}       frozenset {"$fs": [...]}
    bytes {"$b": "base64"}     UUID {"$u": "hex"}      Decimal {"$dec": "str"}
    datetime {"$dt": "iso"}    date {"$d": "iso"}      time {"$tm": "iso"}
    timedelta {"$td": [days, seconds, microseconds]}
    a dict with keys that are not all str {"$m": [[key, value], ...]}
    a dict whose only key is one of these tags {"$e": [key, value]} (escaped)

Everything else passes through untouched, so a session that holds only JSON values
encodes to exactly the JSON it always did, and stored sessions keep loading. Decoding
undoes the tags; bytes without ``"$`` in them skip that step entirely.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

_PLAIN: frozenset[type] = frozenset({str, int, float, bool, type(None)})
#: The tag of an escaped one-key dict: a session key spelled so encodes as one too.
ESCAPE = "$e"


class Unserializable(TypeError):
    """A value (somewhere inside a session value) that has no JSON form."""

    def __init__(self, value: object, reason: str = "") -> None:
        super().__init__(reason or f"{type(value).__name__} has no JSON form")
        self.value_type = _type_name(value)


def _type_name(value: object) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def tag(value: Any) -> Any:
    """``value`` made JSON-ready; the very same object when nothing needed a tag."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return _tag_dict(value)
    if kind is list:
        return _tag_list(value)
    encode = _ENCODERS.get(kind)
    if encode is not None:
        return encode(value)
    return _tag_subclass(value)


def _tag_list(items: list[Any]) -> list[Any]:
    out: list[Any] | None = None
    for index, item in enumerate(items):
        tagged = item if type(item) in _PLAIN else tag(item)
        if out is not None:
            out.append(tagged)
        elif tagged is not item:
            out = items[:index]
            out.append(tagged)
    return items if out is None else out


def _tag_dict(mapping: dict[Any, Any]) -> Any:
    out: dict[str, Any] | None = None
    for name, item in mapping.items():
        if type(name) is not str:
            return {"$m": [[tag(k), tag(v)] for k, v in mapping.items()]}
        tagged = item if type(item) in _PLAIN else tag(item)
        if out is not None:
            out[name] = tagged
        elif tagged is not item:
            out = {}
            for earlier, kept in mapping.items():
                if earlier == name:
                    break
                out[earlier] = kept
            out[name] = tagged
    result = mapping if out is None else out
    if len(result) == 1:
        ((name, item),) = result.items()
        if name in _DECODERS:
            return {"$e": [name, item]}
    return result


def _tag_subclass(value: Any) -> Any:
    """Subclasses of the types above (enums of int or str, say) by their base type."""
    if isinstance(value, bool | int | float | str):
        return value  # json encodes these by their base type
    for base, encode in _ENCODERS.items():
        if isinstance(value, base):
            return encode(value)
    if isinstance(value, dict):
        return _tag_dict(value)
    if isinstance(value, list):
        return _tag_list(value)
    raise Unserializable(value)


def _sequence(tag_name: str) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        items = [tag(item) for item in value]
        if tag_name != "$t":
            with contextlib.suppress(TypeError):  # sets encode the same way every time
                items.sort(key=_sort_key)
        return {tag_name: items}

    return encode


def _sort_key(item: Any) -> tuple[str, Any]:
    return (type(item).__name__, item if type(item) in _PLAIN else repr(item))


def _timedelta(value: dt.timedelta) -> Any:
    return {"$td": [value.days, value.seconds, value.microseconds]}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: _sequence("$t"),
    set: _sequence("$s"),
    frozenset: _sequence("$fs"),
    bytes: lambda value: {"$b": base64.b64encode(value).decode("ascii")},
    bytearray: lambda value: {"$b": base64.b64encode(value).decode("ascii")},
    dt.datetime: lambda value: {"$dt": value.isoformat()},
    dt.date: lambda value: {"$d": value.isoformat()},
    dt.time: lambda value: {"$tm": value.isoformat()},
    dt.timedelta: _timedelta,
    uuid.UUID: lambda value: {"$u": value.hex},
    decimal.Decimal: lambda value: {"$dec": str(value)},
}


def _mapping(pairs: Any) -> dict[Any, Any]:
    return {_hashable(key): value for key, value in pairs}


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(item) for item in key)
    if isinstance(key, set):
        return frozenset(key)
    return key


def _escaped(pair: Any) -> dict[str, Any]:
    name, value = pair
    return {name: value}


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$t": tuple,
    "$s": lambda items: {_hashable(item) for item in items},
    "$fs": lambda items: frozenset(_hashable(item) for item in items),
    "$b": lambda text: base64.b64decode(text, validate=True),
    "$dt": dt.datetime.fromisoformat,
    "$d": dt.date.fromisoformat,
    "$tm": dt.time.fromisoformat,
    "$td": lambda parts: dt.timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
    "$u": uuid.UUID,
    "$dec": decimal.Decimal,
    "$m": _mapping,
    "$e": _escaped,
}


def untag(obj: dict[str, Any]) -> Any:
    """``json.loads`` object hook: a one-key object named by a tag becomes its value.

    A malformed tagged value (stored bytes that are not ours) is a ``ValueError``, as any
    other undecodable data is.
    """
    if len(obj) == 1:
        for name, value in obj.items():
            decode = _DECODERS.get(name)
            if decode is not None:
                try:
                    return decode(value)
                except (TypeError, ValueError, IndexError, KeyError, OverflowError) as exc:
                    raise ValueError(f"malformed {name} value") from exc
    return obj


def fresh_copy(value: Any) -> Any:
    """A copy of a decoded value that shares nothing mutable with it.

    Only for what ``untag`` and JSON build: dicts, lists, tuples and sets are copied;
    everything else they hold (str, numbers, bytes, dates, UUID, Decimal, frozenset,
    tuple keys) cannot change in place and is shared. Faster than decoding again.
    """
    kind = type(value)
    if kind is dict:
        return {
            name: item if type(item) in _PLAIN else fresh_copy(item) for name, item in value.items()
        }
    if kind is list:
        return [item if type(item) in _PLAIN else fresh_copy(item) for item in value]
    if kind is tuple:
        return tuple(fresh_copy(item) for item in value)
    if kind is set:
        return set(value)  # its members are hashable: str, numbers, tuples, frozensets
    return value


class NotPlain(Exception):
    """Raised by ``plain_copy`` for a value that a decode would not give back as it is."""


def plain_copy(value: Any) -> Any:
    """A copy of a value JSON carries as it is: exactly str, int, float, bool, None, list,
    and dict with str keys (not a one-key dict named like a tag, which is escaped).

    Its decode is such a copy, and its encoding needs no tag (``tag(value) is value``).
    Anything else raises ``NotPlain``, a subclass included (its decode has another type).
    Shares nothing mutable with ``value``: the app may change it after the save.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [item if type(item) in _PLAIN else plain_copy(item) for item in value]
    if kind is dict:
        copied = {}
        for name, item in value.items():
            if type(name) is not str:
                raise NotPlain
            copied[name] = item if type(item) in _PLAIN else plain_copy(item)
        if len(copied) == 1 and name in _DECODERS:
            raise NotPlain
        return copied
    raise NotPlain


def known_decode(data: dict[str, Any]) -> dict[str, Any] | None:
    """``plain_copy(data)`` where the decode of ``data`` is known without decoding it;
    ``None`` where it is not (a value of another type, or nesting too deep to walk)."""
    try:
        copied: dict[str, Any] = plain_copy(data)
    except (NotPlain, RecursionError):
        return None
    return copied
