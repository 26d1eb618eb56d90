"""Store outage: a private ``redis-server`` stops answering mid-test, then comes back.

Requests that need the session get 503 with ``Retry-After`` and nothing is written;
requests that do not touch the store are unaffected; service recovers by itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sessionware.stores import RedisStore
from tests.conftest import MakeClient
from tests.counting import CountingStore
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


@pytest.fixture
def store(private_redis: PrivateRedis) -> Iterator[CountingStore]:
    redis_store = RedisStore(private_redis.url, timeout=0.5)
    try:
        yield CountingStore(redis_store)
    finally:
        redis_store.close()


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("text/plain")
    assert session_cookies(response) == []  # no cookie for a session that was not saved


def test_an_outage_answers_503_with_retry_after_when_the_session_is_needed(
    make_client: MakeClient, private_redis: PrivateRedis, store: CountingStore
) -> None:
    client = make_client(store=store)
    value = sent_value(client.get("/set?k=user&v=ada"))
    private_redis.stop()
    assert_unavailable(replay(client, value))  # the load fails
    assert_unavailable(replay(client, value, "/set?k=more&v=1"))
    client.cookies.clear()
    assert_unavailable(client.get("/set?k=new&v=1"))  # the first save fails


def test_requests_that_do_not_touch_the_store_are_unaffected_by_an_outage(
    make_client: MakeClient, private_redis: PrivateRedis, store: CountingStore
) -> None:
    client = make_client(store=store)
    private_redis.stop()
    store.reset()
    for path in ("/noop", "/read", "/expiry-info", "/error"):
        client.cookies.clear()
        response = client.get(path)
        assert response.status_code == (500 if path == "/error" else 200), path
        assert session_cookies(response) == []
    assert as_json(client.get("/read")) == EMPTY
    assert store.total == 0, store.calls


def test_nothing_is_written_when_the_store_stops_taking_writes(
    make_client: MakeClient, private_redis: PrivateRedis, store: CountingStore
) -> None:
    """Reads answer, writes hang: each failing step leaves the stored session as it was."""
    client = make_client(store=store)
    value = sent_value(client.get("/set?k=user&v=ada"))
    assert private_redis.dbsize() == 1
    assert private_redis.command("CLIENT", "PAUSE", "60000", "WRITE") == b"+OK"
    try:
        assert_unavailable(replay(client, value, "/set?k=user&v=mallory"))
        assert_unavailable(replay(client, value, "/cycle"))
        # The timed-out connections are closed, so Redis drops their writes: none is
        # left pending to land after the 503 (a reused connection would also read
        # the stale reply of the timed-out command).
        assert wait_until(lambda: private_redis.info("clients", "blocked_clients") == "0")
    finally:
        assert private_redis.command("CLIENT", "UNPAUSE") == b"+OK"
    assert as_json(replay(client, value)) == {"key": value, "data": {"user": "ada"}}
    assert private_redis.dbsize() == 1


def test_service_recovers_by_itself_when_the_store_is_back(
    make_client: MakeClient, private_redis: PrivateRedis, store: CountingStore
) -> None:
    client = make_client(store=store)
    value = sent_value(client.get("/set?k=user&v=ada"))
    private_redis.stop()
    assert_unavailable(replay(client, value))
    private_redis.start()  # same port, empty: it runs without persistence
    lost = replay(client, value)
    assert as_json(lost) == EMPTY  # the old key is unknown now: never adopted
    assert is_deletion(lost)
    fresh = sent_value(replay(client, value, "/set?k=user&v=ada"))
    assert fresh != value
    assert as_json(replay(client, fresh)) == {"key": fresh, "data": {"user": "ada"}}
