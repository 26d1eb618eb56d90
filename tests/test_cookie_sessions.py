"""The cookie store through both middlewares: the session API with no server state."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessionware._formats import CookieFormat, Payload
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import CookieStore
from tests.conftest import MakeClient
from tests.test_behaviour import session_cookie_headers
from tests.test_kept_fields import _typed
from tests.test_serializers import _mutable_parts, json_values, python_values

SECRET = "cookie-store-test-secret-0123456789abcdef"


@pytest.fixture(params=[False, True], ids=["signed", "encrypted"])
def encrypt(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def test_data_round_trips_in_the_cookie(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    assert session_cookie_headers(client.get("/noop")) == []
    client.get("/set?k=user&v=ada")
    client.get("/set?k=theme&v=dark")
    client.get("/del?k=theme")
    state = client.get("/read").json()
    assert state["data"] == {"user": "ada"}
    assert state["key"] is not None


def test_unchanged_session_sends_no_cookie(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    client.get("/set?k=a&v=1")
    assert session_cookie_headers(client.get("/read")) == []


def test_flush_deletes_the_cookie(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    client.get("/set?k=user&v=ada")
    (deletion,) = session_cookie_headers(client.get("/flush"))
    assert "Max-Age=0" in deletion
    assert client.get("/read").json() == {"key": None, "data": {}}


def test_cycle_key_changes_the_key_and_keeps_data(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    client.get("/set?k=user&v=ada")
    before = client.get("/read").json()["key"]
    after = client.get("/cycle").json()
    assert after["before"] == before
    assert after["key"] != before
    assert client.get("/read").json() == {"key": after["key"], "data": {"user": "ada"}}


def test_clear_keeps_the_cookie_session(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    client.get("/set?k=a&v=1")
    key = client.get("/read").json()["key"]
    client.get("/clear")
    assert client.get("/read").json() == {"key": key, "data": {}}


def test_set_expiry_is_honoured(make_client: MakeClient, encrypt: bool) -> None:
    client = make_client(store=CookieStore(encrypt=encrypt), secret_key=SECRET)
    (cookie,) = session_cookie_headers(client.get("/expiry?v=120"))
    assert "Max-Age=120" in cookie or "Max-Age=119" in cookie
    assert client.get("/expiry-info").json() == {"age": 120, "browser_close": False}
    (cookie,) = session_cookie_headers(client.get("/expiry?v=0"))
    assert "Max-Age" not in cookie
    assert client.get("/expiry-info").json()["browser_close"] is True


def test_a_cookie_signed_with_another_secret_is_ignored(
    make_client: MakeClient, encrypt: bool
) -> None:
    first = make_client(
        store=CookieStore(encrypt=encrypt), secret_key="one-0123456789abcdef0123456789abcdef"
    )
    first.get("/set?k=a&v=1")
    stolen = first.session_cookie
    other = make_client(
        store=CookieStore(encrypt=encrypt), secret_key="two-0123456789abcdef0123456789abcdef"
    )
    response = other.get("/read", headers={"Cookie": f"sessionid={stolen}"})
    assert response.json() == {"key": None, "data": {}}


def test_secret_key_alone_keeps_sessions_in_a_signed_cookie(make_client: MakeClient) -> None:
    client = make_client(secret_key=SECRET)
    client.get("/set?k=a&v=1")
    assert client.get("/read").json()["data"] == {"a": "1"}


def _format(encrypt: bool, *secrets: bytes) -> CookieFormat:
    codec = FieldCodec(JSONSerializer())
    return CookieStore(encrypt=encrypt).cookie_format(list(secrets), codec)


def test_a_remembered_cookie_gives_each_request_its_own_data(encrypt: bool) -> None:
    fmt = _format(encrypt, SECRET.encode())
    issued = {"cart": ["apple"]}
    value = fmt.encode("k" * 43, Payload(issued, created_at=1.0, expires_at=2.0))
    issued["cart"].append("changed after the response")  # the request's own object
    first = fmt.decode(value)
    assert first is not None
    assert first.payload is not None
    first.payload.data()["cart"].append("changed in place, never saved")
    second = fmt.decode(value)
    assert second is not None
    assert second.payload is not None
    assert second.payload.data() == {"cart": ["apple"]}
    assert second.key == "k" * 43
    assert not second.old_secret
    third = fmt.decode(value)  # from here on, copies of what the second decoded
    assert third is not None
    assert third.payload is not None
    mine, yours = third.payload.data(), third.payload.data()
    mine["cart"].append("only mine")
    assert yours == {"cart": ["apple"]}
    assert third.payload.data() == {"cart": ["apple"]}


def test_every_worker_reads_the_same_values_from_a_cookie(encrypt: bool) -> None:
    issuing = _format(encrypt, SECRET.encode())
    other = _format(encrypt, SECRET.encode())  # another process: nothing remembered
    data = {"pair": (1, 2), "mixed": {1: "int", "1": "str"}, "when": dt.date(2026, 1, 2)}
    value = issuing.encode("k" * 43, Payload(data, created_at=1.0, expires_at=2.0))
    here, there = issuing.decode(value), other.decode(value)
    assert here is not None
    assert here.payload is not None
    assert there is not None
    assert there.payload is not None
    assert here.payload.data() == there.payload.data() == data
    assert type(here.payload.data()["pair"]) is type(there.payload.data()["pair"]) is tuple


def test_remembering_a_cookie_accepts_no_altered_copy_of_it(encrypt: bool) -> None:
    fmt = _format(encrypt, SECRET.encode())
    value = fmt.encode("k" * 43, Payload({"user": "ada"}, created_at=1.0, expires_at=2.0))
    assert fmt.decode(value) is not None
    for altered in (value[:-1], value + "A", value[:-2] + value[-1] + value[-2], " " + value):
        if altered != value:
            assert fmt.decode(altered) is None


def test_a_cookie_signed_with_an_old_secret_stays_marked_for_resigning(encrypt: bool) -> None:
    old = b"old-secret-0123456789-0123456789-abc"
    value = _format(encrypt, old).encode(
        "k" * 43, Payload({"user": "ada"}, created_at=1.0, expires_at=2.0)
    )
    fmt = _format(encrypt, SECRET.encode(), old)
    for _ in range(2):  # verified, then remembered
        decoded = fmt.decode(value)
        assert decoded is not None
        assert decoded.old_secret


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.dictionaries(st.text(), python_values | json_values | st.floats(), max_size=5))
def test_the_issuing_worker_reads_exactly_what_any_other_worker_reads(
    encrypt: bool, data: dict[str, Any]
) -> None:
    issuing = _format(encrypt, SECRET.encode())
    value = issuing.encode("k" * 43, Payload(dict(data), created_at=1.0, expires_at=2.0))
    for _ in range(3):  # the first read (known at issue), the second decode, then copies
        here = issuing.decode(value)
        there = _format(encrypt, SECRET.encode()).decode(value)
        assert here is not None
        assert here.payload is not None
        assert there is not None
        assert there.payload is not None
        mine = here.payload.data()
        assert _typed(mine) == _typed(there.payload.data())
        assert not {id(part) for part in _mutable_parts(mine)} & {
            id(part) for part in _mutable_parts(data)
        }
