"""``MemoryStore`` remembers what its records decode to and hands out copies (``KeptFields``,
``plain_copy``): a request must see exactly what decoding the stored bytes gives, the same
values, types and order, and share no mutable object with another request."""

from __future__ import annotations

import math
from collections import OrderedDict
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sessionware import JSONSerializer, SessionMiddleware
from sessionware._records import KeptFields
from sessionware._serializers import FieldCodec, dumps_plain
from sessionware._tagged import NotPlain, plain_copy, tag
from sessionware.stores import MemoryStore
from tests.test_serializers import _mutable_parts, json_values, python_values

SERIALIZER = JSONSerializer()
CODEC = FieldCodec(SERIALIZER)
NAMES = st.sampled_from(["a", "b", "cart", "$t", "user"])
Step = tuple[str, ...] | tuple[str, str, Any]


class Colour(StrEnum):
    RED = "red"


def _typed(value: Any) -> Any:
    """``value`` spelled with every type in it, so NaN and -0.0 compare as they are."""
    if isinstance(value, dict):
        return (type(value), [(_typed(k), _typed(v)) for k, v in value.items()])
    if isinstance(value, list | tuple):
        return (type(value), [_typed(item) for item in value])
    if isinstance(value, set | frozenset):
        return (type(value), sorted(map(repr, value)))
    return (type(value), repr(value))


@given(json_values | st.floats())
def test_a_plain_copy_is_what_encoding_and_decoding_give(value: Any) -> None:
    copied = plain_copy(value)
    decoded = SERIALIZER.loads(SERIALIZER.dumps({"v": value}))["v"]
    assert _typed(copied) == _typed(decoded)
    assert not {id(part) for part in _mutable_parts(value)} & {
        id(part) for part in _mutable_parts(copied)
    }


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        {1: "int key"},
        [Colour.RED],
        {"nested": OrderedDict(a=1)},
        [True, {"s": {1, 2}}],
        b"bytes",
    ],
    ids=repr,
)
def test_a_value_whose_decode_has_other_types_is_not_plain(value: Any) -> None:
    with pytest.raises(NotPlain):
        plain_copy(value)


@given(python_values)
def test_plain_copy_succeeds_only_where_the_decode_is_a_copy(value: Any) -> None:
    decoded = SERIALIZER.loads(SERIALIZER.dumps({"v": value}))["v"]
    try:
        copied = plain_copy(value)
    except NotPlain:
        return
    assert _typed(copied) == _typed(decoded)


def _steps() -> st.SearchStrategy[list[Step]]:
    step = st.one_of(
        st.tuples(st.just("set"), NAMES, python_values | json_values | st.floats()),
        st.tuples(st.just("del"), NAMES),
        st.tuples(st.just("append"), NAMES),  # an in-place change, then modified = True
        st.tuples(st.just("clear")),
        st.tuples(st.just("cycle_key")),
    )
    return st.lists(step, max_size=4)


def _apply(session: Any, steps: list[Step]) -> None:
    for step in steps:
        if step[0] == "set":
            session[step[1]] = step[2]
        elif step[0] == "del":
            session.pop(step[1], None)
        elif step[0] == "append":
            if isinstance(session.get(step[1]), list):
                session[step[1]].append("more")
                session.modified = True
        elif step[0] == "clear":
            session.clear()
        else:
            session.cycle_key()


class _App:
    """One route that runs the pending steps and records what the session held first."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.seen: list[dict[str, Any]] = []  # what each request found, as objects
        self.typed: list[Any] = []  # and spelled out, before the steps changed it
        self.store = MemoryStore()
        self.app = Starlette(
            routes=[Route("/", self.route)],
            middleware=[Middleware(SessionMiddleware, store=self.store)],
        )

    async def route(self, request: Request) -> PlainTextResponse:
        session: Any = request.session
        self.seen.append(dict(session))
        self.typed.append(_typed(dict(session)))
        _apply(session, self.steps)
        if session.session_key is None:
            session["a"] = 0  # give it a key, so every request has a record to compare
        return PlainTextResponse("ok")

    def stored(self, cookie: str | None) -> dict[str, Any]:
        loaded = self.store.load(cookie or "", 0.0) if cookie else None
        if loaded is None:
            return {}
        fields = loaded.fields  # type: ignore[union-attr]
        assert type(fields) is KeptFields
        return CODEC.decode(dict(fields))  # a plain dict: the bytes decoded, no copy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_steps(), min_size=1, max_size=5))
def test_each_request_sees_exactly_what_the_stored_bytes_decode_to(
    requests: list[list[Step]],
) -> None:
    served = _App()
    with TestClient(served.app) as client:
        for steps in [*requests, []]:
            expected = served.stored(client.cookies.get("sessionid"))
            served.steps = steps
            client.get("/")
            assert served.typed[-1] == _typed(expected)


def test_two_requests_never_share_a_mutable_value() -> None:
    served = _App()
    served.steps = [("set", "cart", [[1], {"x": [2]}])]
    with TestClient(served.app) as client:
        client.get("/")
        served.steps = []
        client.get("/")
        client.get("/")
    first, second = served.seen[1], served.seen[2]
    assert first == second == {"cart": [[1], {"x": [2]}], "a": 0}
    assert not {id(part) for part in _mutable_parts(first)} & {
        id(part) for part in _mutable_parts(second)
    }


def test_a_nan_survives_the_kept_decode_as_a_float() -> None:
    served = _App()
    served.steps = [("set", "x", math.nan)]
    with TestClient(served.app) as client:
        client.get("/")
        served.steps = []
        client.get("/")
    assert math.isnan(served.seen[1]["x"])


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_plain_values_encode_without_tags_to_the_same_bytes(data: dict[str, Any]) -> None:
    try:
        plain_copy(data)
    except NotPlain:
        assert any(len(part) == 1 for part in _mutable_parts(data) if isinstance(part, dict))
        return
    assert tag(data) is data
    assert dumps_plain(data) == SERIALIZER.dumps(data)


@pytest.mark.parametrize("tag_name", ["$t", "$dt", "$e", "$m"])
def test_a_one_key_dict_named_like_a_tag_is_not_plain(tag_name: str) -> None:
    with pytest.raises(NotPlain):
        plain_copy({"outer": [{tag_name: 1}]})
    assert plain_copy({"outer": [{tag_name: 1, "other": 2}]}) == {
        "outer": [{tag_name: 1, "other": 2}]
    }
