"""Store URLs: one string picks and configures a store (``store_from_url``), for the
command line and settings; nothing connects while a URL is read."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sessionware._keys import new_key
from sessionware._records import Record
from sessionware.cli import redact
from sessionware.stores import (
    CachedStore,
    CookieStore,
    FileStore,
    MemcachedStore,
    MemoryStore,
    RedisStore,
    SQLStore,
)
from sessionware.stores import _redis as redis_module
from sessionware.stores._urls import SUPPORTED, store_from_url


def test_memory_url() -> None:
    store = store_from_url("memory://")
    assert isinstance(store, MemoryStore)
    assert store.max_entries is None
    bounded = store_from_url("memory://?max_entries=10")
    assert isinstance(bounded, MemoryStore)
    assert bounded.max_entries == 10


@pytest.mark.parametrize(
    "url", ["memory://?max_entries=0", "memory://?max_entries=x", "memory://?size=3", "memory://h"]
)
def test_memory_url_mistakes(url: str) -> None:
    with pytest.raises(ValueError, match=r"max_entries|option|location"):
        store_from_url(url)


def test_file_url(tmp_path: Path) -> None:
    store = store_from_url(f"file://{tmp_path}/sessions")
    assert isinstance(store, FileStore)
    assert store.directory == str(tmp_path / "sessions")
    local = store_from_url(f"file://localhost{tmp_path}/s")
    assert isinstance(local, FileStore)
    assert local.directory == str(tmp_path / "s")
    with pytest.raises(ValueError, match="directory"):
        store_from_url("file://")


def _use(store: object) -> None:
    """Write one record, so a SQLite file exists where SQLAlchemy put it."""
    assert isinstance(store, SQLStore)
    now = time.time()
    assert store.insert(new_key(), Record({"a": b"1"}, now, now + 60))
    store.close()


def test_sqlite_urls_read_as_sqlalchemy_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _use(store_from_url("sqlite:///relative.db"))  # three slashes: relative to the cwd
    assert (tmp_path / "relative.db").exists()
    absolute = tmp_path / "elsewhere" / "absolute.db"
    absolute.parent.mkdir()
    _use(store_from_url(f"sqlite:///{absolute}"))  # four slashes: an absolute path
    assert absolute.exists()


@pytest.mark.parametrize(
    ("url", "backend"),
    [
        ("postgresql://u:pw@db.example/app", "postgresql"),
        ("postgres://u:pw@db.example/app", "postgresql"),
        ("postgresql+psycopg://u@db.example/app", "postgresql"),
        ("mysql://u@db.example/app", "mysql"),
        ("mariadb://u@db.example/app", "mysql"),
    ],
)
def test_server_sql_urls_build_without_connecting(url: str, backend: str) -> None:
    store = store_from_url(url)
    assert isinstance(store, SQLStore)
    assert store.engine.url.get_backend_name() == backend
    store.close()


class _FakeRedis:
    def __init__(self, url: str) -> None:
        self.url = url


@pytest.mark.parametrize(
    ("url", "given"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("rediss://cache.example:6380/1", "rediss://cache.example:6380/1"),
        ("valkey://cache.example/2", "redis://cache.example/2"),
        ("valkeys://cache.example/2", "rediss://cache.example/2"),
        ("REDIS://h/0", "redis://h/0"),
    ],
)
def test_redis_urls(url: str, given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_module, "RedisStore", _FakeRedis)
    store: Any = store_from_url(url)
    assert isinstance(store, _FakeRedis)
    assert store.url == given


def test_redis_url_builds_a_real_store_without_connecting() -> None:
    store = store_from_url("redis://127.0.0.1:1/0")  # nothing listens there
    assert isinstance(store, RedisStore)
    store.close()


def test_cookie_url() -> None:
    store = store_from_url("cookie://")
    assert isinstance(store, CookieStore)
    assert not store.encrypt
    encrypted = store_from_url("cookie://?encrypt=true")
    assert isinstance(encrypted, CookieStore)
    assert encrypted.encrypt
    with pytest.raises(ValueError, match="option"):
        store_from_url("cookie://?sign=1")


def test_cached_url(tmp_path: Path) -> None:
    inner = f"sqlite%3A%2F%2F%2F{tmp_path}%2Fbacking.db"
    store = store_from_url(f"cached+redis://127.0.0.1:6379/0?store={inner}")
    assert isinstance(store, CachedStore)
    assert isinstance(store.cache, RedisStore)
    assert isinstance(store.store, SQLStore)
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "cached+redis://127.0.0.1/0",
        "cached+redis://127.0.0.1/0?store=",
        "cached+redis://127.0.0.1/0?store=cookie%3A%2F%2F",
        "cached+cookie://?store=memory%3A%2F%2F",
    ],
)
def test_cached_url_mistakes(url: str) -> None:
    with pytest.raises(ValueError, match="cached"):
        store_from_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://u:hunter2@host/x", "sessions.db", "://x", "", "redis+tls://h", "http:/x"]
)
def test_unknown_schemes_list_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError, match="supported") as caught:
        store_from_url(url)
    message = str(caught.value)
    for scheme in ("memory://", "file://", "sqlite://", "postgresql://", "mysql://", "redis://"):
        assert scheme in message
    assert "hunter2" not in message


# -- the options the URL table documents (docs/cli.md) -----------------------------------


def test_sql_table_option_names_the_table_and_leaves_the_rest_to_the_driver(
    tmp_path: Path,
) -> None:
    store = store_from_url(f"sqlite:///{tmp_path / 's.db'}?table=app_sessions")
    assert isinstance(store, SQLStore)
    assert store.table.name == "app_sessions"
    assert store.engine.url.query == {}  # SQLAlchemy never sees table=
    _use(store)  # the table is made under that name
    reopened = SQLStore(f"sqlite:///{tmp_path / 's.db'}", table="app_sessions")
    assert [found for what, found in reopened.check() if what == "sessions"] == ["1 live"]
    reopened.close()
    server = store_from_url(
        "postgresql://u:pw@db.example/app?sslmode=require&table=web_sessions&application_name=x"
    )
    assert isinstance(server, SQLStore)
    assert server.table.name == "web_sessions"
    assert dict(server.engine.url.query) == {"sslmode": "require", "application_name": "x"}
    server.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///s.db?table=",
        "sqlite:///s.db?table=no-dashes",
        "sqlite:///s.db?table=a&table=b",
        "postgresql://db/app?table=x;drop",
    ],
)
def test_sql_table_option_mistakes(url: str) -> None:
    with pytest.raises(ValueError, match="table"):
        store_from_url(url)


def test_memcached_urls() -> None:
    assert any(url.startswith("memcached://") for url in SUPPORTED)
    plain = store_from_url("memcached://127.0.0.1:11211")
    assert isinstance(plain, MemcachedStore)
    assert plain.prefix == "sessionware:"
    tuned = store_from_url("memcached://127.0.0.1?prefix=app%3A&timeout=2.5")
    assert isinstance(tuned, MemcachedStore)
    assert tuned.prefix == "app:"
    assert tuned._timeout == 2.5
    for store in (plain, tuned):
        store.close()


@pytest.mark.parametrize(
    "url",
    [
        "memcached://127.0.0.1?size=3",
        "memcached://127.0.0.1?timeout=0",
        "memcached://127.0.0.1/sessions",
        "memcached://127.0.0.1?prefix=",
    ],
)
def test_memcached_url_mistakes(url: str) -> None:
    with pytest.raises(ValueError, match=r"option|timeout|memcached://|prefix"):
        store_from_url(url)


def test_redis_prefix_option() -> None:
    store = store_from_url("redis://127.0.0.1:1/0?prefix=app%3As%3A&socket_keepalive=true")
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:s:"
    store.close()


def test_cached_url_takes_a_cache_ttl(tmp_path: Path) -> None:
    inner = f"file%3A%2F%2F{tmp_path}%2Fsessions"
    store = store_from_url(f"cached+redis://127.0.0.1:1/0?prefix=c%3A&cache_ttl=7.5&store={inner}")
    assert isinstance(store, CachedStore)
    assert store.cache_ttl == 7.5
    assert isinstance(store.cache, RedisStore)
    assert store.cache.prefix == "c:"  # the cache's own options still reach it
    default = store_from_url(f"cached+redis://127.0.0.1:1/0?store={inner}")
    assert isinstance(default, CachedStore)
    assert default.cache_ttl == 30.0
    with pytest.raises(ValueError, match="cache_ttl"):
        store_from_url(f"cached+redis://127.0.0.1:1/0?cache_ttl=soon&store={inner}")
    for made in (store, default):
        made.close()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:pw@db/x", "postgresql://app:***@db/x"),
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("memory://", "memory://"),
        (
            "cached+redis://h/0?store=postgresql%3A%2F%2Fu%3Apw%40db%2Fx",
            "cached+redis://h/0?store=postgresql%3A%2F%2Fu%3A%2A%2A%2A%40db%2Fx",
        ),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
