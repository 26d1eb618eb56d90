"""What logout guarantees (SECURITY.md): on a server store the record is deleted, so a
copied cookie is dead at once; the cookie store cannot revoke a copy before it expires."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from sessionware.stores import CachedStore, CookieStore, RedisStore, SQLStore
from sessionware.stores.base import SessionStore, Stale
from tests.conftest import MakeClient
from tests.security.support import (
    EMPTY,
    as_json,
    is_deletion,
    replay,
    sent_value,
    session_cookies,
    wait_until,
)
from tests.servers import PrivateRedis


@pytest.mark.parametrize("signed", [False, True], ids=["plain-keys", "signed-keys"])
def test_logout_on_a_server_store_kills_every_copy_of_the_cookie_at_once(
    make_client: MakeClient, server_store: SessionStore, signed: bool
) -> None:
    secret = {"secret_key": "logout-secret-0123456789abcdef0123456789"}
    options = {"store": server_store, **(secret if signed else {})}
    client = make_client(**options)
    stolen = sent_value(client.get("/set?k=user&v=ada"))  # an attacker copies the cookie
    key = as_json(replay(client, stolen))["key"]
    assert is_deletion(replay(client, stolen, "/flush"))  # the user logs out
    assert isinstance(server_store.load(key, time.time()), Stale)  # no data: a stale key
    assert as_json(replay(client, stolen)) == EMPTY
    written = replay(client, stolen, "/set?k=user&v=attacker")
    assert session_cookies(written) == []  # the write is dropped; nothing is issued
    assert as_json(replay(client, stolen)) == EMPTY


@pytest.mark.parametrize("encrypt", [False, True], ids=["signed", "encrypted"])
def test_a_cookie_store_logout_cannot_revoke_a_copied_cookie(
    make_client: MakeClient, encrypt: bool
) -> None:
    """The documented limit of client-side sessions: logout deletes the browser's cookie,
    but a copy taken earlier stays valid until its own expiry."""
    client = make_client(
        store=CookieStore(encrypt=encrypt), secret_key="logout-secret-0123456789abcdef0123456789"
    )
    stolen = sent_value(client.get("/set?k=user&v=ada"))
    assert is_deletion(replay(client, stolen, "/flush"))
    assert as_json(replay(client, stolen))["data"] == {"user": "ada"}


def test_a_logout_through_a_cached_store_works_in_a_cache_outage_and_stays_final(
    make_client: MakeClient, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """Two processes share one cache and one store. The cache stops taking writes while
    the user logs out on the first: the logout still works (SECURITY.md, "The cached
    store"), is final at once on the first process, and on the second as soon as the
    first reaches the cache again (at the latest after ``cache_ttl``)."""
    with ExitStack() as stack:
        backing = SQLStore(f"sqlite:///{tmp_path / 'sessions.db'}")
        stack.callback(backing.close)

        def worker() -> CachedStore:
            cache = RedisStore(private_redis.url, timeout=0.5)
            stack.callback(cache.close)
            store = CachedStore(cache=cache, store=backing)
            store.cache_retry_after = 0  # try the cache again at the next request
            return store

        first, second = make_client(store=worker()), make_client(store=worker())
        stolen = sent_value(first.get("/set?k=user&v=ada"))
        assert as_json(replay(second, stolen))["data"] == {"user": "ada"}
        assert private_redis.command("CLIENT", "PAUSE", "60000", "WRITE") == b"+OK"
        try:
            logout = replay(first, stolen, "/flush")
            assert is_deletion(logout)  # the user was told: logged out
            assert as_json(replay(first, stolen)) == EMPTY
        finally:
            assert private_redis.command("CLIENT", "UNPAUSE") == b"+OK"
        assert wait_until(lambda: private_redis.info("clients", "blocked_clients") == "0")
        replay(first, stolen)  # the first process uses the cache again
        assert as_json(replay(second, stolen)) == EMPTY
        assert as_json(replay(first, stolen)) == EMPTY
