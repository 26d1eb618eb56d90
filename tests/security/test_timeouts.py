"""Lifetimes are enforced by the server when a session is loaded, whatever the client sends.

A replayed old cookie, or a record the store has not purged yet, never revives a session
past its idle lifetime (``max_age`` or ``set_expiry``) or its ``absolute_max_age``. Time is
controlled by the ``clock`` fixture, which stands in for ``time.time`` everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import CookieStore, MemoryStore
from tests.conftest import MakeClient
from tests.security.support import (
    EMPTY,
    Clock,
    as_json,
    is_deletion,
    max_age_of,
    replay,
    sent_value,
    session_cookies,
)

SECRET = "timeouts-secret-0123456789abcdef"


@dataclass
class Backend:
    """A server store (memory) or the cookie store, signed or encrypted."""

    store: MemoryStore | None
    encrypt: bool = False

    def options(self, **extra: Any) -> dict[str, Any]:
        if self.store is not None:
            return {"store": self.store, **extra}
        return {"store": CookieStore(encrypt=self.encrypt), "secret_key": SECRET, **extra}

    def still_there(self, value: str, key: str, saved_at: float) -> bool:
        """The old state is still at hand: the record is not purged from the store, or
        the cookie's signature (or encryption) is still valid."""
        if self.store is not None:
            return self.store.load(key, saved_at) is not None
        codec = FieldCodec(JSONSerializer())
        cookie_format = CookieStore(encrypt=self.encrypt).cookie_format([SECRET.encode()], codec)
        return cookie_format.decode(value) is not None


@pytest.fixture(params=["memory", "cookie-signed", "cookie-encrypted"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return Backend(MemoryStore())
    return Backend(None, encrypt=request.param == "cookie-encrypted")


def test_the_idle_lifetime_is_enforced_on_a_replayed_cookie(
    make_client: MakeClient, backend: Backend, clock: Clock
) -> None:
    client = make_client(**backend.options(max_age=100))
    saved_at = clock.now
    value = sent_value(client.get("/set?k=user&v=ada"))
    clock.advance(99)
    state = as_json(replay(client, value))
    assert state["data"] == {"user": "ada"}
    clock.advance(2)  # 101 s after the last save; reads do not extend the lifetime
    assert backend.still_there(value, state["key"], saved_at)
    response = replay(client, value)
    assert as_json(response) == EMPTY
    assert is_deletion(response)


@pytest.mark.parametrize("how", ["seconds", "timedelta", "datetime"])
def test_a_set_expiry_lifetime_is_enforced_on_a_replayed_cookie(
    make_client: MakeClient, backend: Backend, clock: Clock, how: str
) -> None:
    client = make_client(**backend.options(max_age=1000))
    value = sent_value(client.get("/set?k=user&v=ada"))
    expiry = {"seconds": "30", "timedelta": "td:30", "datetime": f"at:{clock.now + 30}"}[how]
    value = sent_value(replay(client, value, f"/expiry?v={expiry}"))
    clock.advance(29)
    state = as_json(replay(client, value))
    assert state["data"] == {"user": "ada"}
    clock.advance(2)
    assert backend.still_there(value, state["key"], clock.now - 31)
    assert as_json(replay(client, value)) == EMPTY


def test_absolute_max_age_ends_even_an_active_session(
    make_client: MakeClient, backend: Backend, clock: Clock
) -> None:
    client = make_client(**backend.options(max_age=60, absolute_max_age=100))
    first = value = sent_value(client.get("/set?k=user&v=ada"))
    for step in range(3):  # activity every 30 s keeps the idle lifetime fresh
        clock.advance(30)
        response = replay(client, value, f"/set?k=step&v={step}")
        (header,) = session_cookies(response)
        value = sent_value(response)
    assert max_age_of(header) == 10  # 90 s in: the cookie lives only to the absolute end
    clock.advance(11)
    assert as_json(replay(client, value)) == EMPTY
    assert as_json(replay(client, first)) == EMPTY


def test_absolute_max_age_configured_later_applies_to_existing_sessions(
    make_client: MakeClient, backend: Backend, clock: Clock
) -> None:
    before = make_client(**backend.options(max_age=1000))
    value = sent_value(before.get("/set?k=user&v=ada"))
    after = make_client(**backend.options(max_age=1000, absolute_max_age=100))
    clock.advance(99)
    assert as_json(replay(after, value))["data"] == {"user": "ada"}
    clock.advance(2)
    assert as_json(replay(after, value)) == EMPTY
    assert as_json(replay(before, value))["data"] == {"user": "ada"}  # idle lifetime left


def test_an_expired_session_is_not_revived_by_a_write(
    make_client: MakeClient, backend: Backend, clock: Clock
) -> None:
    client = make_client(**backend.options(max_age=100))
    value = sent_value(client.get("/set?k=user&v=ada"))
    old_key = as_json(replay(client, value))["key"]
    clock.advance(101)
    fresh = sent_value(replay(client, value, "/set?k=x&v=1"))
    state = as_json(replay(client, fresh))
    assert state["data"] == {"x": "1"}
    assert state["key"] not in (None, old_key)
