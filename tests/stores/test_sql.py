"""SQLStore specifics on real SQLite, PostgreSQL and MariaDB: schema, locking, failures."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from sessionware._errors import SessionStoreError
from sessionware._expiry import Expiry
from sessionware._keys import key_fingerprint, new_key
from sessionware._records import Change, Record
from sessionware.stores._sql import SQLStore
from sessionware.stores._sql_schema import POOL_SIZE, engine_url
from tests.servers import MYSQL_URL, POSTGRES_URL, require_server
from tests.stores.factories import unique

NOW = time.time()
HOUR = 3600.0

KINDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


def url_for(kind: str, tmp_path: Path) -> str:
    if kind != "sqlite":
        require_server(kind)
    return {
        "sqlite": f"sqlite:///{tmp_path / 'sessions.db'}",
        "postgres": POSTGRES_URL,
        "mysql": MYSQL_URL,
    }[kind]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def url(kind: str, tmp_path: Path) -> str:
    return url_for(kind, tmp_path)


@pytest.fixture
def store(url: str) -> Iterator[SQLStore]:
    sql = SQLStore(url, table=unique("sw_sql"))
    try:
        yield sql
    finally:
        sql.drop_table()
        sql.close()


def record(data: dict[str, Any], expires_in: float = HOUR) -> Record:
    return Record(data, created_at=NOW, expires_at=NOW + expires_in)


def table_exists(store: SQLStore) -> bool:
    return sa.inspect(store.engine).has_table(store.table.name)


def count_rows(store: SQLStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(store.table)).scalar_one())


@contextmanager
def open_transaction(store: SQLStore) -> Iterator[sa.Connection]:
    """A second client's transaction; on SQLite it holds the database write lock."""
    with store.engine.connect() as conn:
        conn.begin()
        if store.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
        conn.rollback()


def assert_update_fails_after(
    store: SQLStore, key: str, at_least: float, at_most: float, match: str | None = None
) -> None:
    """An update blocked by another writer raises ``SessionStoreError`` once its timeout is up."""
    started = time.monotonic()
    with pytest.raises(SessionStoreError, match=match):
        store.update(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW)
    assert at_least < time.monotonic() - started < at_most


def in_thread(target: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target(*args))
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# -- schema --------------------------------------------------------------------------------


def test_table_and_index_are_created_at_first_use_only(store: SQLStore) -> None:
    assert not table_exists(store)  # construction touched nothing
    assert store.load(new_key(), NOW) is None
    assert table_exists(store)
    indexes = sa.inspect(store.engine).get_indexes(store.table.name)
    assert [(i["name"], i["column_names"]) for i in indexes] == [
        (f"ix_{store.table.name}_expires_at", ["expires_at"])
    ]


def test_an_existing_table_is_left_alone(url: str) -> None:
    name = unique("sw_sql")
    first = SQLStore(url, table=name)
    try:
        key = new_key()
        assert first.create(key, record({"a": 1}))
        with first.engine.begin() as conn:  # a column added by the user's own migration
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN note VARCHAR(20)")
        second = SQLStore(url, table=name)
        try:
            loaded = second.load(key, NOW)
            assert loaded is not None
            assert loaded.data == {"a": 1}
            assert second.create(new_key(), record({"b": 2}))
            columns = {c["name"] for c in sa.inspect(second.engine).get_columns(name)}
            assert "note" in columns
        finally:
            second.close()
    finally:
        first.drop_table()
        first.close()


def documented_schema() -> dict[str, bool]:
    """Column name -> nullable, as the SQLStore docstring documents them."""
    doc = SQLStore.__doc__ or ""
    block = doc.split("Schema", 1)[1].split("::", 1)[1].split("\n\n")[1]
    columns = {}
    for line in block.strip().splitlines():
        definition = line.split("--")[0]
        name = definition.split()[0]
        columns[name] = "NOT NULL" not in definition and "PRIMARY KEY" not in definition
    return columns


def test_created_schema_matches_the_docstring(store: SQLStore, kind: str) -> None:
    store.load(new_key(), NOW)
    inspector = sa.inspect(store.engine)
    columns = {c["name"]: c for c in inspector.get_columns(store.table.name)}
    assert {name: c["nullable"] for name, c in columns.items()} == documented_schema()
    assert inspector.get_pk_constraint(store.table.name)["constrained_columns"] == ["session_key"]
    types = {
        name: str(c["type"].compile(dialect=store.engine.dialect)) for name, c in columns.items()
    }
    assert types["session_key"].startswith("VARCHAR(64)")
    assert types["expiry"].startswith("VARCHAR(64)")
    assert types["data"] == {"sqlite": "BLOB", "postgres": "BYTEA", "mysql": "LONGBLOB"}[kind]
    double = {"sqlite": "DOUBLE", "postgres": "DOUBLE PRECISION", "mysql": "DOUBLE"}[kind]
    assert types["created_at"] == types["expires_at"] == double
    if kind == "mysql":
        assert getattr(columns["session_key"]["type"], "collation", None) == "ascii_bin"


def test_keys_differing_only_in_case_are_distinct(store: SQLStore) -> None:
    key = new_key()
    other = key.swapcase()
    assert store.create(key, record({"who": "lower"}))
    assert store.create(other, record({"who": "swapped"}))
    loaded = store.load(other, NOW)
    assert loaded is not None
    assert loaded.data == {"who": "swapped"}


# -- SQLite specifics ------------------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_busy_timeout(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", timeout=2.5)
    try:
        store.load(new_key(), NOW)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        store.close()


def test_sqlite_writers_of_one_process_queue_instead_of_timing_out(tmp_path: Path) -> None:
    # 16 threads hammering one file with a short busy timeout: SQLite's own back-off
    # (sleeps up to 100 ms) makes waiters miss the lock past the timeout; queued, none does.
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", timeout=0.1)
    try:
        run_concurrent_updates(store, threads=16, per_thread=20)
    finally:
        store.close()


def test_sqlite_writer_queue_wait_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", timeout=0.5)
    other = SQLStore(f"sqlite:///{tmp_path / 's.db'}")  # same database: the same queue
    try:
        key = new_key()
        assert store.create(key, record({}))
        with other._writing():
            assert_update_fails_after(store, key, at_least=0.4, at_most=3.0, match="timed out")
        assert store.update(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW)
    finally:
        store.close()
        other.close()


@pytest.mark.postgres
def test_postgres_writes_commit_asynchronously_but_deletes_wait_for_the_flush() -> None:
    require_server("postgres")
    store = SQLStore(POSTGRES_URL, table=unique("sw_sql"))
    statements: list[str] = []

    def remember(*args: Any) -> None:
        statements.append(str(args[2]))

    try:
        key = new_key()
        assert store.create(key, record({"a": 1}))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        sa.event.listen(store.engine, "before_cursor_execute", remember)
        assert store.delete(key)
        durable = statements.index("SET LOCAL synchronous_commit TO on")
        assert statements[durable + 1].startswith("DELETE FROM")
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", remember)
        store.drop_table()
        store.close()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory&uri=true"]
)
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="in-memory SQLite"):
        SQLStore(url)


def test_a_supplied_sqlite_engine_still_locks_for_read_merge_write(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")  # legacy sqlite3 transactions
    store = SQLStore(engine, table="sessions")
    try:
        run_concurrent_updates(store, threads=2, per_thread=25)
    finally:
        store.close()
        engine.dispose()


# -- construction and failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:1/test", "mysql://root@127.0.0.1:1/test"]
)
def test_construction_does_not_connect_and_first_use_fails_fast(url: str) -> None:
    store = SQLStore(url, table=unique("sw_sql"), timeout=2.0)  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(SessionStoreError) as info:
        store.load(new_key(), NOW)
    assert time.monotonic() - started < 3.0
    assert isinstance(info.value.__cause__, sa.exc.OperationalError)
    store.close()


def test_unopenable_sqlite_file_fails_at_first_use(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 'missing-dir' / 's.db'}")
    with pytest.raises(SessionStoreError, match="OperationalError"):
        store.load(new_key(), NOW)


@pytest.mark.parametrize(
    ("url", "mapped", "extra"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg", "postgres"),
        ("mysql://u@h/db", "mysql+pymysql", "mysql"),
        ("mariadb://u@h/db", "mysql+pymysql", "mysql"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg", "postgres"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2", None),
        ("mysql+mysqldb://u@h/db", "mysql+mysqldb", None),
        ("sqlite:///s.db", "sqlite", None),
    ],
)
def test_driverless_urls_map_to_the_drivers_of_our_extras(
    url: str, mapped: str, extra: str | None
) -> None:
    parsed, needs = engine_url(url)
    assert parsed.drivername == mapped
    assert needs == extra


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [("postgresql://u@h/db", "psycopg", "postgres"), ("mariadb://u@h/db", "pymysql", "mysql")],
)
def test_a_missing_driver_names_the_extra(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes ``import <module>`` fail
    with pytest.raises(ImportError, match=re.escape(f"pip install 'sessionware[{extra}]'")):
        SQLStore(url)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "bad-name"}, "plain identifier"),
        ({"table": "x" * 49}, "plain identifier"),
        ({"timeout": 0}, "timeout"),
        ({"url_or_engine": "not a url"}, "not a database URL"),
        ({"url_or_engine": "nosuchdb://h/x"}, "unusable database URL"),
    ],
)
def test_configuration_mistakes_are_value_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"url_or_engine": "sqlite:///s.db", **kwargs}
    with pytest.raises(ValueError, match=message):
        SQLStore(**arguments)


def test_a_held_lock_fails_the_update_within_the_timeout(url: str) -> None:
    store = SQLStore(url, table=unique("sw_sql"), timeout=1.0)
    try:
        key = new_key()
        assert store.create(key, record({"a": 1}))
        with open_transaction(store) as conn:
            if store.engine.dialect.name != "sqlite":
                locked = store.table.select().where(store.table.c.session_key == key)
                conn.execute(locked.with_for_update())
            assert_update_fails_after(store, key, at_least=0.8, at_most=4.0)
        assert store.update(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW)
    finally:
        store.drop_table()
        store.close()


@pytest.mark.parametrize("kind", KINDS[1:])
def test_a_connection_dropped_by_the_server_is_replaced_unnoticed(
    kind: str, tmp_path: Path
) -> None:
    url = url_for(kind, tmp_path)
    store = SQLStore(url, table=unique("sw_sql"))
    whoami, kill, alive = {
        "postgres": (
            "SELECT pg_backend_pid()",
            "SELECT pg_terminate_backend({})",
            "SELECT count(*) FROM pg_stat_activity WHERE pid = {}",
        ),
        "mysql": (
            "SELECT CONNECTION_ID()",
            "KILL {}",
            "SELECT count(*) FROM information_schema.processlist WHERE id = {}",
        ),
    }[kind]
    admin = sa.create_engine(engine_url(url)[0], poolclass=NullPool)
    try:
        key = new_key()
        assert store.create(key, record({"a": 1}))
        with store.engine.connect() as conn:  # the one pooled connection
            before = int(str(conn.exec_driver_sql(whoami).scalar()))
        with admin.connect() as conn:
            conn.exec_driver_sql(kill.format(before))
            deadline = time.monotonic() + 5
            while (
                conn.exec_driver_sql(alive.format(before)).scalar() and time.monotonic() < deadline
            ):
                time.sleep(0.05)  # until the server side of our connection is gone
        time.sleep(0.05)
        assert store.load(key, NOW) is not None
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql(whoami).scalar() != before
    finally:
        admin.dispose()
        store.drop_table()
        store.close()


def test_close_releases_connections_and_the_store_still_works(store: SQLStore) -> None:
    key = new_key()
    assert store.create(key, record({"a": 1}))
    store.close()
    assert store.load(key, NOW) is not None


# -- records ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [("data", b"\xff\xfenot json"), ("data", b"[1, 2]"), ("expiry", "{not json")],
)
def test_an_undecodable_row_is_absent_with_one_warning_without_the_key(
    store: SQLStore, column: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    assert store.create(key, record({"a": 1}))
    with store.engine.begin() as conn:
        conn.execute(store.table.update().values({column: value}))
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.load(key, NOW) is None
    warnings = [r for r in caplog.records if r.name == "sessionware"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert key_fingerprint(key) in warnings[0].getMessage()
    assert key not in caplog.text
    # An update cannot merge into what it cannot read: nothing is written.
    assert not store.update(key, Change(set={"b": 2}, expires_at=NOW + HOUR), NOW)


def test_an_update_that_only_moves_the_expiry_keeps_the_data(store: SQLStore) -> None:
    key = new_key()
    assert store.create(key, record({"a": 1}))
    renew = Change(expires_at=NOW + 2 * HOUR, expiry_changed=True, expiry=Expiry("age", 60))
    assert store.update(key, renew, NOW)
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"a": 1}
    assert loaded.expires_at == pytest.approx(NOW + 2 * HOUR)
    assert loaded.expiry == Expiry("age", 60)
    assert not store.update(new_key(), renew, NOW)


def test_clear_expired_deletes_in_batches(store: SQLStore) -> None:
    store.clear_expired(NOW)  # creates the table
    rows = [
        {"session_key": new_key(), "data": b"{}", "created_at": NOW, "expires_at": NOW - i % 50}
        for i in range(2500)
    ]
    live = [new_key() for _ in range(10)]
    rows += [
        {"session_key": key, "data": b"{}", "created_at": NOW, "expires_at": NOW + 1}
        for key in live
    ]
    with store.engine.begin() as conn:
        conn.execute(store.table.insert(), rows)
    deletes: list[str] = []

    def count_deletes(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("DELETE"):
            deletes.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", count_deletes)
    store.clear_batch_size = 300
    try:
        assert store.clear_expired(NOW) == 2500
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count_deletes)
    assert len(deletes) == 9  # 8 batches of 300 and one of 100
    assert count_rows(store) == len(live)
    assert all(store.load(key, NOW) is not None for key in live)


# -- concurrency -----------------------------------------------------------------------------


def run_concurrent_updates(store: SQLStore, threads: int, per_thread: int) -> None:
    """A new session, then ``threads`` threads each setting ``per_thread`` keys of their own:
    every update succeeds and every key is kept."""
    key = new_key()
    assert store.create(key, record({}))
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                change = Change(set={f"t{t}-{i}": i}, expires_at=NOW + HOUR)
                assert store.update(key, change, NOW)
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {f"t{t}-{i}": i for t in range(threads) for i in range(per_thread)}


def test_two_threads_of_fifty_updates_lose_nothing(store: SQLStore) -> None:
    run_concurrent_updates(store, threads=2, per_thread=50)


def test_more_concurrent_requests_than_pooled_connections_reuse_the_pool(store: SQLStore) -> None:
    # Past its size SQLAlchemy's default pool closes each connection handed back, so a
    # steady load reconnected on nearly every request; ours queues for a pooled one.
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(None))
    run_concurrent_updates(store, threads=3 * POOL_SIZE, per_thread=20)
    assert len(opened) <= POOL_SIZE


def test_create_losing_an_insert_race_returns_false(store: SQLStore) -> None:
    key = new_key()
    store.load(key, NOW)  # creates the table
    with open_transaction(store) as conn:
        # Another request inserted the key and has not committed yet.
        conn.execute(
            store.table.insert(),
            {
                "session_key": key,
                "data": b'{"winner":1}',
                "created_at": NOW,
                "expires_at": NOW + HOUR,
            },
        )
        thread, outcome = in_thread(store.create, key, record({"loser": 1}))
        time.sleep(0.3)
        assert thread.is_alive()  # blocked on the other transaction's row or lock
        conn.commit()
    thread.join()
    assert outcome == [False]
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"winner": 1}


def test_racing_creates_over_an_expired_row_replace_it_once(store: SQLStore) -> None:
    key = new_key()
    assert store.create(key, record({"old": 1}, expires_in=-10))
    barrier = threading.Barrier(6)

    def create(i: int) -> bool:
        barrier.wait()
        return store.create(key, record({"new": i}))

    threads = [in_thread(create, i) for i in range(6)]
    for thread, _ in threads:
        thread.join()
    results = [outcome[0] for _, outcome in threads]
    assert sorted(results) == [False] * 5 + [True]
    loaded = store.load(key, NOW)
    assert loaded is not None
    assert loaded.data == {"new": results.index(True)}
