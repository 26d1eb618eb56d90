"""The default serializer: tagged JSON that round-trips common Python types (API.md §6)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionware import JSONSerializer, SessionSerializationError
from sessionware._records import pack_fields, unpack_fields
from sessionware._serializers import FieldCodec
from sessionware._tagged import fresh_copy

SERIALIZER = JSONSerializer()
CODEC = FieldCodec(SERIALIZER)

TAGGED: list[Any] = [
    dt.datetime(2026, 11, 29, 12, 30, 15, 123456),
    dt.datetime(2026, 11, 29, 12, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 11, 29, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    dt.date(2026, 2, 28),
    dt.time(23, 59, 58, 999),
    dt.time(8, 0, tzinfo=dt.UTC),
    dt.timedelta(days=-3, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("3.14159265358979323846264338327950288"),
    decimal.Decimal("-Infinity"),
    b"\x00\xffbinary",
    (1, "two", (3.0, None)),
    (),
    {1, 2, 3},
    frozenset({"a", "b"}),
    {1: "int key", "1": "str key", (2, 3): "tuple key"},
    {"$t": "a user dict that looks like a tag"},
    {"$e": ["also", "escaped"]},
    [{"nested": [dt.date(2000, 1, 1), {"deep": (1,)}]}],
]


@pytest.mark.parametrize("value", TAGGED, ids=lambda value: type(value).__name__)
def test_tagged_values_round_trip_with_their_type(value: Any) -> None:
    back = SERIALIZER.loads(SERIALIZER.dumps({"v": value}))["v"]
    assert back == value
    assert type(back) is type(value)


@pytest.mark.parametrize("value", TAGGED, ids=lambda value: type(value).__name__)
def test_tagged_values_round_trip_through_fields(value: Any) -> None:
    fields = CODEC.encode_all({"v": value, "plain": "x"})
    assert CODEC.decode(fields) == {"v": value, "plain": "x"}


def test_plain_json_stays_plain_json() -> None:
    data = {"user": "ada", "n": 3, "ratio": 0.5, "ok": True, "none": None, "list": [1, {"a": "ü"}]}
    raw = SERIALIZER.dumps(data)
    assert raw == json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    assert json.loads(raw) == data
    assert SERIALIZER.loads(raw) == data


def test_a_session_key_named_like_a_tag_round_trips() -> None:
    data = {"$t": [1, 2], "$dt": "not a date"}
    assert SERIALIZER.loads(SERIALIZER.dumps(data)) == data
    fields = CODEC.encode_all(data)
    assert CODEC.decode(fields) == data
    assert CODEC.decode({"$t": fields["$t"]}) == {"$t": [1, 2]}


def test_enum_members_of_int_and_str_encode_as_their_value() -> None:
    class Colour(enum.StrEnum):
        RED = "red"

    class Size(enum.IntEnum):
        BIG = 3

    assert SERIALIZER.loads(SERIALIZER.dumps({"c": Colour.RED, "s": Size.BIG})) == {
        "c": "red",
        "s": 3,
    }


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (object(), "object"),
        ({"inner": [1, {"x": object}]}, "type"),
        (lambda: None, "function"),
        ({"bad": 1 + 2j}, "complex"),
    ],
)
def test_an_unserializable_value_names_the_key_and_the_type(value: Any, named: str) -> None:
    with pytest.raises(SessionSerializationError) as raised:
        CODEC.encode("basket", value)
    message = str(raised.value)
    assert "'basket'" in message
    assert named in message
    assert "serializer=" in message  # a suggested fix
    assert isinstance(raised.value, TypeError)


def test_a_value_that_contains_itself_is_a_serialization_error() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(SessionSerializationError, match="'loop'"):
        CODEC.encode("loop", loop)


def test_foreign_bytes_are_a_value_error_never_anything_else() -> None:
    for raw in (b"\xff", b"[1]", b'{"a":', b"null", b'{"$b":"***"}'):
        with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: "not ours"
            CODEC.decode({"a": raw})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
python_values = st.recursive(
    json_values
    | st.binary()
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(), inner, max_size=3)
        | st.frozensets(st.integers() | st.text(), max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_any_plain_json_session_encodes_exactly_as_json(data: dict[str, Any]) -> None:
    raw = SERIALIZER.dumps(data)
    if not any(name.startswith("$") for name in _all_keys(data)):
        assert json.loads(raw) == data
    assert SERIALIZER.loads(raw) == data


@given(st.dictionaries(st.text(), python_values, max_size=5))
def test_any_supported_session_round_trips_by_field(data: dict[str, Any]) -> None:
    assert CODEC.decode(CODEC.encode_all(data)) == data


def _all_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _all_keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []


def test_a_session_key_spelled_like_the_escape_tag_round_trips_with_other_keys() -> None:
    # Its field is itself an escape, {"$e": ["$e", value]}: joined with other fields (one
    # parse for all, or one packed blob for a store), that escape would be lost.
    data = {"": [], "$e": [], "x": {"$e": 1}}
    fields = CODEC.encode_all(data)
    assert CODEC.decode(fields) == data
    assert CODEC.decode(unpack_fields(pack_fields(fields))) == data


def _mutable_parts(value: Any) -> list[Any]:
    """Every dict, list and set inside ``value`` (tuples and dict values included)."""
    found: list[Any] = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += _mutable_parts(item)
    elif isinstance(value, list | set):
        found.append(value)
        for item in value:
            found += _mutable_parts(item)
    elif isinstance(value, tuple):
        for item in value:
            found += _mutable_parts(item)
    return found


def _same_types(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


@given(st.dictionaries(st.text(), python_values | st.sets(st.integers(), max_size=3), max_size=5))
def test_a_fresh_copy_of_decoded_data_is_what_decoding_again_gives(data: dict[str, Any]) -> None:
    raw = SERIALIZER.dumps(data)
    decoded = SERIALIZER.loads(raw)
    copied = fresh_copy(decoded)
    again = SERIALIZER.loads(raw)
    assert copied == again
    assert _same_types(copied, again)
    shared = {id(part) for part in _mutable_parts(decoded)}
    assert not shared & {id(part) for part in _mutable_parts(copied)}


@pytest.mark.parametrize("value", TAGGED, ids=lambda value: type(value).__name__)
def test_a_fresh_copy_keeps_every_tagged_type(value: Any) -> None:
    decoded = SERIALIZER.loads(SERIALIZER.dumps({"v": value}))
    copied = fresh_copy(decoded)
    assert copied == {"v": value}
    assert _same_types(copied, decoded)
