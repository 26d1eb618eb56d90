"""Store URLs and the ``sessionware`` command line (the demo server itself: test_demo.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sessionware import cli
from sessionware._keys import new_key
from sessionware._records import Record
from sessionware.cli import main, redact
from sessionware.stores import (
    CachedStore,
    CookieStore,
    FileStore,
    MemoryStore,
    RedisStore,
    SQLStore,
)
from sessionware.stores import _redis as redis_module
from sessionware.stores._urls import store_from_url

# -- store_from_url ----------------------------------------------------------------------


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
    assert store.create(new_key(), Record({"a": 1}, now, now + 60))
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


def test_missing_driver_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # "import redis" now fails
    with pytest.raises(ImportError, match=r"sessionware\[redis\]"):
        store_from_url("redis://127.0.0.1/0")


# -- the command line --------------------------------------------------------------------


def test_clear_expired_prints_the_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    store = SQLStore(url)
    now = time.time()
    for _ in range(3):
        assert store.create(new_key(), Record({"old": True}, now - 100, now - 10))
    live = new_key()
    assert store.create(live, Record({"live": True}, now, now + 600))
    store.close()

    assert main(["clear-expired", "--store", url]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "removed 3 expired sessions"
    assert "3" in out.split()

    assert main(["clear-expired", "--store", url]) == 0
    assert capsys.readouterr().out.strip() == "removed 0 expired sessions"
    reopened = SQLStore(url)
    assert reopened.load(live, time.time()) is not None
    reopened.close()


def test_clear_expired_as_a_module_subprocess() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "sessionware", "clear-expired", "--store", "memory://"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["removed", "0", "expired", "sessions"]


def test_unknown_scheme_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clear-expired", "--store", "ftp://example.com/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sessionware: error: ")
    assert "memory://" in err
    assert len(err.strip().splitlines()) == 1


def test_store_failure_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.db").mkdir()  # SQLite cannot open a directory as its database
    assert main(["clear-expired", "--store", f"sqlite:///{tmp_path / 'dir.db'}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sessionware: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_driver_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    assert main(["clear-expired", "--store", "redis://127.0.0.1/0"]) == 1
    assert "sessionware[redis]" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["clear-expired"], ["bogus"], ["demo", "--port", "x"]])
def test_usage_mistakes_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


class _FakeServer:
    """Stands in for ``uvicorn.run``: records what the demo would serve."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, str, int]] = []

    def __call__(self, app: Any, *, host: str, port: int, log_level: str) -> None:
        self.calls.append((app, host, port))


def test_demo_prints_the_url_and_serves_the_app(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = _FakeServer()
    monkeypatch.setattr(uvicorn, "run", server)
    assert main(["demo", "--store", "memory://", "--port", "8765"]) == 0
    assert "http://127.0.0.1:8765/" in capsys.readouterr().out
    assert main(["demo", "--store", "memory://", "--host", "0.0.0.0", "--port", "1"]) == 0
    assert "http://127.0.0.1:1/" in capsys.readouterr().out
    assert [(host, port) for _, host, port in server.calls] == [
        ("127.0.0.1", 8765),
        ("0.0.0.0", 1),
    ]


def test_demo_on_the_cookie_store_makes_up_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uvicorn, "run", _FakeServer())
    monkeypatch.delenv(cli.SECRET_ENV, raising=False)
    assert main(["demo", "--store", "cookie://"]) == 0
    assert "using a random one" in capsys.readouterr().out


def test_demo_hides_the_store_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(uvicorn, "run", _FakeServer())
    assert main(["demo", "--store", "redis://:hunter2@127.0.0.1:1/0"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert "redis://:***@127.0.0.1:1/0" in out


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
