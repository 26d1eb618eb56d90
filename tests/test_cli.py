"""The ``sessionware`` command on stores: ``clear-expired``, ``check``, ``sessions`` and
``revoke``, their output on a terminal and through a pipe, and their exit codes (the
demo command: test_cli_demo.py; store URLs: stores/test_urls.py)."""

from __future__ import annotations

import io
import os
import pty
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware._keys import info_id, new_key
from sessionware._records import Record
from sessionware.cli import main
from sessionware.stores import FileStore, MemcachedStore, RedisStore, SQLStore
from sessionware.stores.base import SessionStore, Stale
from tests.servers import MEMCACHED_URL, POSTGRES_URL, REDIS_URL, require_server
from tests.stores.factories import unique

ROOT = Path(__file__).resolve().parent.parent
HOUR = 3600.0


def fill(store: SessionStore, live: int, expired: int, user: str | None = None) -> list[str]:
    """Write ``live`` sessions (of ``user``, created a second apart, oldest first) and
    ``expired`` dead ones through the store API; the live keys."""
    now = time.time()
    keys = []
    for index in range(live):
        key, at = new_key(), now - 100 + index
        record = Record({"a": b"1"}, at, now + HOUR, key_at=at, updated_at=at, user=user)
        assert store.insert(key, record)
        keys.append(key)
    for _ in range(expired):
        assert store.insert(new_key(), Record({"a": b"1"}, now - 200, now - 60))
    return keys


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m sessionware ...`` with its output piped, as from cron."""
    return subprocess.run(
        [sys.executable, "-m", "sessionware", *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def run_in_terminal(*argv: str) -> tuple[int, str]:
    """``python -m sessionware ...`` with stdin, stdout and stderr on a pseudo-terminal,
    as typed in a shell; its exit code and everything the terminal showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "sessionware", *argv],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(follower)
    shown = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program closed its side
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return process.wait(timeout=120), shown.decode("utf-8", "replace")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[SQLStore]:
    store = SQLStore(sqlite_url)
    yield store
    store.close()


# -- clear-expired -----------------------------------------------------------------------


def test_clear_expired_prints_the_count(
    sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    (live,) = fill(sqlite_store, live=1, expired=3)
    assert main(["clear-expired", "--store", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert out == "removed 3 expired sessions\n"
    assert "3" in out.split()  # the number on its own (API.md §7)
    assert main(["clear-expired", "--store", sqlite_url]) == 0
    assert capsys.readouterr().out == "removed 0 expired sessions\n"
    assert isinstance(sqlite_store.load(live, time.time()), Record)


def test_clear_expired_piped_prints_only_the_summary(
    sqlite_url: str, sqlite_store: SQLStore
) -> None:
    sqlite_store.clear_batch_size = 2  # several batches: a bar would have moved
    fill(sqlite_store, live=2, expired=5)
    done = run("clear-expired", "--store", sqlite_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "removed 5 expired sessions\n"
    assert done.stderr == ""


def test_clear_expired_on_a_terminal_shows_a_progress_bar(
    sqlite_url: str, sqlite_store: SQLStore
) -> None:
    fill(sqlite_store, live=2, expired=7)
    code, shown = run_in_terminal("clear-expired", "--store", sqlite_url)
    assert code == 0, shown
    assert "removing expired" in shown  # tqdm's bar: its description, fill and count
    assert "100%|" in shown
    assert "7/7" in shown
    assert shown.rstrip().endswith("removed 7 expired sessions")
    assert sqlite_store.count_expired() == 0


def test_dry_run_counts_and_removes_nothing(
    sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(sqlite_store, live=2, expired=4)
    assert main(["clear-expired", "--store", sqlite_url, "--dry-run"]) == 0
    assert capsys.readouterr().out == "would remove 4 expired sessions\n"
    assert sqlite_store.count_expired() == 4
    assert main(["clear-expired", "--store", sqlite_url]) == 0
    assert capsys.readouterr().out == "removed 4 expired sessions\n"


def test_clear_expired_on_a_file_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = FileStore(tmp_path / "sessions")
    fill(store, live=1, expired=2)
    url = f"file://{tmp_path / 'sessions'}"
    assert main(["clear-expired", "--store", url, "--dry-run"]) == 0
    assert capsys.readouterr().out == "would remove 2 expired sessions\n"
    assert main(["clear-expired", "--store", url]) == 0
    assert capsys.readouterr().out == "removed 2 expired sessions\n"


# -- exit codes --------------------------------------------------------------------------


def _one_error_line(err: str) -> str:
    assert err.startswith("sessionware: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("command", ["clear-expired", "check", "sessions", "revoke"])
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("memory://", "own process"),
        ("memory://?max_entries=5", "own process"),
        ("cookie://", "cookie"),
    ],
)
def test_stores_a_command_cannot_reach_exit_2(
    command: str, url: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [command, "--store", url] + (
        ["--user", "42"] if command in ("sessions", "revoke") else []
    )
    assert main(argv) == 2
    err = _one_error_line(capsys.readouterr().err)
    assert why in err
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("command", ["clear-expired", "check", "sessions", "revoke"])
def test_a_missing_directory_exits_2_and_is_not_created(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo" / "sessions"
    argv = [command, "--store", f"file://{missing}"]
    assert main(argv + (["--user", "42"] if command in ("sessions", "revoke") else [])) == 2
    assert str(missing) in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "typo").exists()


def test_a_missing_sqlite_database_or_table_exits_2_and_is_not_created(
    tmp_path: Path, sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    assert main(["clear-expired", "--store", f"sqlite:///{missing}"]) == 2
    assert str(missing) in _one_error_line(capsys.readouterr().err)
    assert not missing.exists()
    fill(sqlite_store, live=1, expired=1)
    assert main(["clear-expired", "--store", f"{sqlite_url}?table=typo"]) == 2
    assert "'typo'" in _one_error_line(capsys.readouterr().err)
    assert main(["sessions", "--store", f"{sqlite_url}?table=typo", "--user", "1"]) == 2
    capsys.readouterr()
    tables = sqlite3.connect(tmp_path / "sessions.db").execute("SELECT name FROM sqlite_master")
    assert "typo" not in {name for (name,) in tables}


def test_unknown_scheme_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clear-expired", "--store", "ftp://example.com/x"]) == 2
    assert "memory://" in _one_error_line(capsys.readouterr().err)


def test_store_failure_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.db").mkdir()  # SQLite cannot open a directory as its database
    assert main(["clear-expired", "--store", f"sqlite:///{tmp_path / 'dir.db'}"]) == 1
    _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("command", ["clear-expired", "check", "sessions"])
def test_an_unreachable_server_exits_1(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--store", "redis://:hunter2@127.0.0.1:1/0"]
    assert main(argv + (["--user", "7"] if command == "sessions" else [])) == 1
    err = _one_error_line(capsys.readouterr().err)
    assert "Redis" in err
    assert "hunter2" not in err


def _without(module: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python where ``import module`` fails, as without its extra."""
    prelude = f"import sys; sys.modules[{module!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_driver_error_names_the_extra() -> None:
    done = _without(
        "redis",
        "from sessionware.stores._urls import store_from_url\n"
        "try:\n    store_from_url('redis://127.0.0.1/0')\n"
        "except ImportError as exc:\n    print(exc)\n",
    )
    assert "sessionware[redis]" in done.stdout, done.stderr


def test_missing_driver_exits_1() -> None:
    done = _without(
        "redis",
        "from sessionware.cli import main\n"
        "raise SystemExit(main(['clear-expired', '--store', 'redis://127.0.0.1/0']))\n",
    )
    assert done.returncode == 1
    assert "sessionware[redis]" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["clear-expired"],
        ["check"],
        ["sessions", "--store", "sqlite:///x.db"],
        ["revoke", "--store", "sqlite:///x.db"],
        ["clear-expired", "--store", "sqlite:///x.db", "--dry-run=yes"],
        ["bogus"],
    ],
)
def test_usage_mistakes_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2


# -- check -------------------------------------------------------------------------------


def _rows(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        what, _, found = line.partition("  ")
        rows[what.strip()] = found.strip()
    return rows


def test_check_sqlite_without_a_database_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "new.db"
    assert main(["check", "--store", f"sqlite:///{database}"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert "missing" in rows["database"]
    assert "missing" in rows["table"]
    assert not database.exists()


def test_check_sqlite_reports_a_missing_table_and_creates_it_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as conn:  # a database of the application's, no sessions yet
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY)")
    assert main(["check", "--store", f"sqlite:///{database}?table=web_sessions"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["table"] == "web_sessions: missing (created at first use)"
    assert str(database) in rows["database"]
    with sqlite3.connect(database) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}


def test_check_sqlite_counts_the_sessions(
    sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(sqlite_store, live=3, expired=2)
    assert main(["check", "--store", sqlite_url]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["table"] == "sessionware_session: present, schema current"
    assert rows["sessions"] == "3 live"
    assert rows["expired"].startswith("2 ")
    assert sqlite_store.count_expired() == 2  # looked at, not purged


def test_check_sqlite_says_what_an_old_table_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "old.db"
    with sqlite3.connect(database) as conn:  # the first version's schema
        conn.execute(
            "CREATE TABLE sessionware_session (session_key VARCHAR(64) PRIMARY KEY, "
            "data BLOB NOT NULL, created_at FLOAT NOT NULL, expires_at FLOAT NOT NULL, "
            "expiry VARCHAR(64))"
        )
        conn.execute("INSERT INTO sessionware_session VALUES ('k', x'7b7d', 1, 9e9, NULL)")
    assert main(["check", "--store", f"sqlite:///{database}"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert "lacks columns kind, target, key_at, updated_at, user_id" in rows["table"]
    assert rows["sessions"] == "1 live"
    with sqlite3.connect(database) as conn:  # not upgraded by looking
        columns = [row[1] for row in conn.execute("PRAGMA table_info(sessionware_session)")]
    assert "kind" not in columns


@pytest.fixture
def postgres_table() -> Iterator[str]:
    require_server("postgres")
    table = unique("sw_cli")
    yield table
    store = SQLStore(POSTGRES_URL, table=table)
    store.drop_table()
    store.close()


def test_check_postgres(postgres_table: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"{POSTGRES_URL}?table={postgres_table}"
    assert main(["check", "--store", url]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["database"].startswith("postgresql ")
    assert "127.0.0.1:5432/test" in rows["database"]
    assert rows["table"] == f"{postgres_table}: missing (created at first use)"
    store = SQLStore(POSTGRES_URL, table=postgres_table)
    fill(store, live=2, expired=1)
    store.close()
    assert main(["check", "--store", url]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["table"] == f"{postgres_table}: present, schema current"
    assert rows["sessions"] == "2 live"


def test_check_postgres_that_refuses_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    require_server("postgres")
    url = "postgresql://postgres:hunter2@127.0.0.1:5432/no_such_database_here"
    assert main(["check", "--store", url]) == 1
    err = _one_error_line(capsys.readouterr().err)
    assert "hunter2" not in err


@pytest.fixture
def redis_store() -> Iterator[tuple[RedisStore, str]]:
    require_server("redis")
    prefix = unique("sw_cli") + ":"
    store = RedisStore(REDIS_URL, prefix=prefix)
    yield store, f"{REDIS_URL}?prefix={prefix}"
    store.delete_all()
    store.close()


def test_check_redis(
    redis_store: tuple[RedisStore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, url = redis_store
    assert main(["check", "--store", url]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["server"].startswith(("Redis ", "Valkey "))
    assert "127.0.0.1:6379, db 9" in rows["server"]
    assert rows["keys"].startswith("0 under prefix")
    assert rows["sessions"] == "0 live"
    keys = fill(store, live=3, expired=0, user="42")
    assert store.delete(keys[0], time.time(), time.time() + 60)  # an ended key: a marker
    assert main(["check", "--store", url]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["keys"].startswith("4 under prefix")  # 3 sessions (one ended) + the index
    assert rows["sessions"] == "2 live"


def test_check_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = FileStore(tmp_path / "sessions")
    fill(store, live=2, expired=1)
    assert main(["check", "--store", f"file://{tmp_path / 'sessions'}"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["directory"] == f"{tmp_path / 'sessions'}: present, writable by this user"
    assert rows["sessions"] == "2 live"
    assert rows["expired"].startswith("1 ")


def test_check_memcached(capsys: pytest.CaptureFixture[str]) -> None:
    require_server("memcached")
    prefix = unique("sw_cli") + ":"
    assert main(["check", "--store", f"{MEMCACHED_URL}?prefix={prefix}"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["server"].startswith("Memcached ")
    assert rows["sessions"].startswith("unknown")
    store = MemcachedStore(MEMCACHED_URL, prefix=prefix)
    store.delete_all()
    store.close()


def test_check_cached_reports_both_parts(
    tmp_path: Path, redis_store: tuple[RedisStore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, cache_url = redis_store
    FileStore(tmp_path / "sessions").insert(new_key(), Record({}, time.time(), time.time() + 60))
    inner = f"file%3A%2F%2F{tmp_path}%2Fsessions"
    assert main(["check", "--store", f"cached+{cache_url}&store={inner}"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["store sessions"] == "1 live"
    assert rows["cache server"].startswith(("Redis ", "Valkey "))


def test_check_cached_with_a_cache_down_reports_it_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "sessions").mkdir()
    inner = f"file%3A%2F%2F{tmp_path}%2Fsessions"
    url = f"cached+redis://:hunter2@127.0.0.1:1/0?store={inner}"  # nothing listens on port 1
    assert main(["check", "--store", url]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert rows["store sessions"] == "0 live"
    assert rows["cache"].startswith("unreachable, the store serves alone")
    assert "hunter2" not in out


# -- sessions and revoke -------------------------------------------------------------------


def _listed(out: str) -> list[str]:
    header, *lines = out.splitlines()
    assert header.split() == ["id", "created", "updated", "expires"]
    return [line.split()[0] for line in lines]


def _sessions_then_revoke(
    store: SessionStore, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = fill(store, live=3, expired=0, user="42")
    (other,) = fill(store, live=1, expired=0, user="7")
    assert main(["sessions", "--store", url, "--user", "42"]) == 0
    assert _listed(capsys.readouterr().out) == [info_id(key) for key in reversed(keys)]
    for key in keys:  # the listing shows ids, never keys
        assert key not in capsys.readouterr().out

    kept = info_id(keys[1])
    assert main(["revoke", "--store", url, "--user", "42", "--except-id", "nope"]) == 2
    assert "nope" in _one_error_line(capsys.readouterr().err)
    assert len(store.user_sessions("42")) == 3  # a wrong id revokes nothing

    assert main(["revoke", "--store", url, "--user", "42", "--except-id", kept]) == 0
    assert capsys.readouterr().out == "revoked 2 sessions of user 42\n"
    assert [info.id for info in store.user_sessions("42")] == [kept]
    now = time.time()
    assert isinstance(store.load(keys[0], now), Stale)  # ended at once
    assert isinstance(store.load(keys[1], now), Record)

    assert main(["revoke", "--store", url, "--user", "42"]) == 0
    assert capsys.readouterr().out == "revoked 1 session of user 42\n"
    assert main(["sessions", "--store", url, "--user", "42"]) == 0
    assert capsys.readouterr().out.startswith("user 42 has no live sessions")
    assert isinstance(store.load(other, time.time()), Record)  # another user's: untouched


def test_sessions_and_revoke_on_sqlite(
    sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _sessions_then_revoke(sqlite_store, sqlite_url, capsys)


def test_sessions_and_revoke_on_redis(
    redis_store: tuple[RedisStore, str], capsys: pytest.CaptureFixture[str]
) -> None:
    store, url = redis_store
    _sessions_then_revoke(store, url, capsys)


def test_ids_that_begin_with_a_dash_are_values_not_options(
    sqlite_url: str, sqlite_store: SQLStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session id is base64url, so one in 64 begins with "-"; so may a user id."""
    keys: list[str] = []
    while len(keys) < 2 or not info_id(keys[0]).startswith("-"):
        keys = [new_key(), *keys][:2]
    now = time.time()
    for key in keys:
        sqlite_store.insert(key, Record({}, now, now + 600, key_at=now, user="-7"))
    assert main(["sessions", "--store", sqlite_url, "--user", "-7"]) == 0
    assert info_id(keys[0]) in capsys.readouterr().out
    assert main(["revoke", "--store", sqlite_url, "--user", "-7", "--except-id", "-nope"]) == 2
    assert "-nope" in _one_error_line(capsys.readouterr().err)
    kept = info_id(keys[0])
    assert main(["revoke", "--store", sqlite_url, "--user", "-7", "--except-id", kept]) == 0
    assert capsys.readouterr().out == "revoked 1 session of user -7\n"
    assert [info.id for info in sqlite_store.user_sessions("-7")] == [kept]


def test_revoke_explains_a_session_started_meanwhile_survives() -> None:
    done = run("revoke", "--help")
    assert done.returncode == 0
    assert "started meanwhile survives" in " ".join(done.stdout.split())


class _Terminal(io.StringIO):
    """Text output that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_follows_the_purge_in_process(
    sqlite_store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal path above, run in this process (where coverage can see it)."""
    from sessionware import _cli_store

    fill(sqlite_store, live=1, expired=5)
    out, err = _Terminal(), _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert _cli_store.clear_expired(sqlite_store, False, out) == 0
    assert out.getvalue() == "removed 5 expired sessions\n"
    assert "5/5" in err.getvalue()
