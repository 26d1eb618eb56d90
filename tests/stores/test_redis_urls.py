"""The Redis URLs a RedisStore and ``store_from_url`` accept: one server, Redis Cluster,
Sentinel; their options; and the mistakes refused before anything connects."""

from __future__ import annotations

from typing import Any

import pytest

from sessionware.cli import redact
from sessionware.stores import RedisStore
from sessionware.stores._redis_clients import Target, parse_target
from sessionware.stores._urls import SUPPORTED, store_from_url


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("redis://h:1/2", Target("server", url="redis://h:1/2")),
        ("unix:///run/redis.sock?db=3", Target("server", url="unix:///run/redis.sock?db=3")),
        (
            "redis+cluster://a:7000,b:7001/",
            Target("cluster", nodes=(("a", 7000), ("b", 7001))),
        ),
        (
            "redis+cluster://:p%40ss@[::1]:7000,b",
            Target("cluster", nodes=(("::1", 7000), ("b", 6379)), password="p@ss"),
        ),
        (
            "redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/4",
            Target(
                "sentinel",
                nodes=(("s1", 26379), ("s2", 26380)),
                service="mymaster",
                db=4,
                username="u",
                password="pw",
            ),
        ),
        ("redis+sentinel://s1/m", Target("sentinel", nodes=(("s1", 26379),), service="m")),
    ],
)
def test_urls_name_their_topology(url: str, target: Target) -> None:
    assert parse_target(url) == target


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/0", "must start with"),
        ("redis+cluster://:hunter2@a:7000/0", "no path"),
        ("redis+cluster://:hunter2@a:x", "numeric ports"),
        ("redis+cluster://:hunter2@a:1,,b:2", "host:port"),
        ("redis+cluster://:hunter2@a:1?prefix=x", "no query"),
        ("redis+sentinel://:hunter2@s1:26379", "service_name"),
        ("redis+sentinel://:hunter2@s1:26379/m/zero", "must be a number"),
        ("redis+sentinel://:hunter2@s1:26379/m/0/extra", "service_name"),
    ],
)
def test_url_mistakes_are_value_errors_that_never_quote_the_password(
    url: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        RedisStore(url)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:1,127.0.0.1:2/?prefix=app%3As%3A&wait_replicas=1&wait_timeout=0.5",
        "redis+sentinel://127.0.0.1:1/m/2?prefix=app%3As%3A&wait_replicas=1&wait_timeout=0.5",
        "redis://127.0.0.1:1/0?prefix=app%3As%3A&wait_replicas=1&wait_timeout=0.5",
    ],
)
def test_store_urls_carry_the_prefix_and_the_wait_options_without_connecting(url: str) -> None:
    store = store_from_url(url)  # nothing listens on ports 1 and 2
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:s:"
    assert store._wait is not None
    assert (store._wait.replicas, store._wait.timeout) == (1, 0.5)
    store.close()


def test_other_query_options_of_a_single_server_url_go_to_redis_py() -> None:
    store = store_from_url("redis://127.0.0.1:1/0?prefix=p%3A&socket_keepalive=true&timeout=2")
    assert isinstance(store, RedisStore)
    options: dict[str, Any] = store._sync.client.get_connection_kwargs()
    assert options["socket_keepalive"] is True
    assert options["socket_timeout"] == 2.0
    store.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("wait_replicas=one", "whole number"),
        ("wait_replicas=-1", "whole number"),
        ("wait_timeout=soon", "seconds"),
        ("timeout=0", "positive"),
        ("timeout=inf", "positive"),
    ],
)
def test_bad_store_url_options_are_value_errors(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store_from_url(f"redis+cluster://127.0.0.1:1/?{query}")


def test_the_supported_list_names_both_topologies() -> None:
    assert any(item.startswith("redis+cluster://") for item in SUPPORTED)
    assert any(item.startswith("redis+sentinel://") for item in SUPPORTED)
    for scheme in ("valkey+cluster", "valkey+sentinel"):
        store = store_from_url(f"{scheme}://127.0.0.1:1/{'m' if 'sentinel' in scheme else ''}")
        assert isinstance(store, RedisStore)
        store.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis+cluster://:pw@a:1,b:2/", "redis+cluster://:***@a:1,b:2/"),
        ("redis+sentinel://u:pw@s1:1,s2:2/m/0", "redis+sentinel://u:***@s1:1,s2:2/m/0"),
    ],
)
def test_the_command_line_hides_their_passwords(url: str, shown: str) -> None:
    assert redact(url) == shown
