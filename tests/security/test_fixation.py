"""Session fixation: a key the store does not know is never adopted, and ``cycle_key()``
at login kills the pre-login key; on every server store (the ``server_store`` fixture),
under both middlewares."""

from __future__ import annotations

import time

from sessionware._keys import new_key
from sessionware.stores.base import SessionStore, Stale
from tests.conftest import MakeClient
from tests.security.support import (
    EMPTY,
    as_json,
    is_deletion,
    replay,
    sent_value,
    session_cookies,
)


def test_a_planted_unknown_key_is_never_adopted(
    make_client: MakeClient, server_store: SessionStore
) -> None:
    client = make_client(store=server_store)
    planted = new_key()  # well formed, chosen by the attacker, unknown to the store
    read = replay(client, planted)
    assert as_json(read) == EMPTY
    assert is_deletion(read)
    written = replay(client, planted, "/set?k=user&v=victim")
    issued = sent_value(written)
    assert issued != planted
    assert as_json(replay(client, issued)) == {"key": issued, "data": {"user": "victim"}}
    assert server_store.load(planted, time.time()) is None
    assert as_json(replay(client, planted)) == EMPTY


def test_cycle_key_at_login_invalidates_the_pre_login_key(
    make_client: MakeClient, server_store: SessionStore
) -> None:
    client = make_client(store=server_store)
    anonymous = sent_value(client.get("/set?k=cart&v=3"))  # known to an attacker
    login = replay(client, anonymous, "/cycle")
    state = as_json(login)
    assert state["before"] == anonymous
    assert state["key"] not in (None, anonymous)
    authenticated = sent_value(login)
    assert authenticated == state["key"]
    replay(client, authenticated, "/set?k=user&v=victim")
    assert isinstance(server_store.load(anonymous, time.time()), Stale)  # no data left
    assert as_json(replay(client, anonymous)) == EMPTY
    taken_over = replay(client, anonymous, "/set?k=user&v=attacker")
    assert session_cookies(taken_over) == []  # a stale key's write is dropped
    assert as_json(replay(client, authenticated)) == {
        "key": authenticated,
        "data": {"cart": "3", "user": "victim"},
    }
