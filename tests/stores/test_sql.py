"""SQLStore specifics on real SQLite, PostgreSQL and MariaDB: schema and its upgrade,
locking, sizes, logging, failures. The contract itself is in test_conformance.py."""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.pool import NullPool

from sessionware._errors import SessionStoreError, SessionTooLargeError
from sessionware._expiry import Expiry
from sessionware._keys import info_id, key_fingerprint, new_key
from sessionware._records import Change, Moved, Record, Stale, pack_fields
from sessionware._store import Written
from sessionware.stores._sql import SQLStore
from sessionware.stores._sql_engine import POOL_SIZE, engine_url
from sessionware.stores._sql_schema import STALE
from sessionware.stores._sql_statements import ending_values, record_values
from sessionware.testing.conformance import field, fields
from tests.servers import MYSQL_URL, POSTGRES_URL, require_server
from tests.stores.factories import unique

NOW = time.time()
HOUR = 3600.0

KINDS = [
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mysql", marks=pytest.mark.mysql),
]
SERVER_KINDS = KINDS[1:]


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


@contextmanager
def sql_store(url_or_engine: str | sa.Engine, **options: Any) -> Iterator[SQLStore]:
    """A store on a table of its own, dropped afterwards."""
    store = SQLStore(url_or_engine, table=options.pop("table", unique("sw_sql")), **options)
    try:
        yield store
    finally:
        store.drop_table()
        store.close()


@pytest.fixture
def store(url: str) -> Iterator[SQLStore]:
    with sql_store(url) as sql:
        yield sql


def record(
    data: dict[str, bytes] | None = None, ttl: float = HOUR, user: str | None = None
) -> Record:
    return Record(dict(data or {}), NOW, NOW + ttl, key_at=NOW, updated_at=NOW, user=user)


def setting(**values: str) -> Change:
    return Change(set=fields(**values), expires_at=NOW + HOUR)


def live_fields(store: SQLStore, key: str) -> dict[str, bytes]:
    loaded = store.load(key, NOW)
    assert isinstance(loaded, Record), loaded
    return dict(loaded.fields)


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


def in_thread(target: Callable[..., Any], *args: Any) -> tuple[threading.Thread, list[Any]]:
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


def test_table_and_indexes_are_created_at_first_use_only(store: SQLStore) -> None:
    assert not table_exists(store)  # construction touched nothing
    assert store.load(new_key(), NOW) is None
    assert table_exists(store)
    indexes = sa.inspect(store.engine).get_indexes(store.table.name)
    assert sorted((i["name"], i["column_names"]) for i in indexes) == [
        (f"ix_{store.table.name}_expires_at", ["expires_at"]),
        (f"ix_{store.table.name}_user_id", ["user_id"]),
    ]


def test_an_existing_table_with_columns_of_its_own_is_left_alone(url: str) -> None:
    with sql_store(url) as first:
        key = new_key()
        assert first.insert(key, record(fields(a="1")))
        with first.engine.begin() as conn:  # a column added by the user's own migration
            conn.exec_driver_sql(f"ALTER TABLE {first.table.name} ADD COLUMN note VARCHAR(20)")
        second = SQLStore(url, table=first.table.name)
        try:
            assert live_fields(second, key) == fields(a="1")
            assert second.insert(new_key(), record(fields(b="2")))
            columns = {c["name"] for c in sa.inspect(second.engine).get_columns(first.table.name)}
            assert "note" in columns
        finally:
            second.close()


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
    for name in ("session_key", "target", "expiry"):
        assert types[name].startswith("VARCHAR(64)")
    assert types["kind"].startswith("VARCHAR(8)")
    assert types["data"] == {"sqlite": "BLOB", "postgres": "BYTEA", "mysql": "LONGBLOB"}[kind]
    assert types["user_id"] == ("VARBINARY(255)" if kind == "mysql" else "VARCHAR(255)")
    double = {"sqlite": "DOUBLE", "postgres": "DOUBLE PRECISION", "mysql": "DOUBLE"}[kind]
    for name in ("created_at", "expires_at", "key_at", "updated_at"):
        assert types[name] == double
    if kind == "mysql":
        for name in ("session_key", "target"):
            assert getattr(columns[name]["type"], "collation", None) == "ascii_bin"


def test_keys_differing_only_in_case_are_distinct(store: SQLStore) -> None:
    key = new_key()
    other = key.swapcase()
    assert store.insert(key, record(fields(who="lower")))
    assert store.insert(other, record(fields(who="swapped")))
    assert live_fields(store, other) == fields(who="swapped")


def test_user_ids_compare_exactly(store: SQLStore) -> None:
    # MySQL's text collations would take "ada" for "Ada" and "ada " for "ada".
    keys = {user: new_key() for user in ("ada", "Ada", "ada ", "zoë")}
    for user, key in keys.items():
        assert store.insert(key, record(user=user))
    for user, key in keys.items():
        assert [info.id for info in store.user_sessions(user, NOW)] == [info_id(key)]
        loaded = store.load(key, NOW)
        assert isinstance(loaded, Record)
        assert loaded.user == user
    assert store.revoke_user("ada", now=NOW) == 1
    assert isinstance(store.load(keys["Ada"], NOW), Record)


def test_a_user_id_too_long_for_the_index_is_refused_before_writing(store: SQLStore) -> None:
    key = new_key()
    with pytest.raises(ValueError, match="at most 255 bytes"):
        store.insert(key, record(user="é" * 128))
    assert store.load(key, NOW) is None


# -- upgrading a table of the previous version ---------------------------------------------


def previous_version_table(name: str) -> sa.Table:
    """The table as the previous version created it."""
    key_type = sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("session_key", key_type, primary_key=True),
        sa.Column("data", sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("expiry", sa.String(64), nullable=True),
        sa.Index(f"ix_{name}_expires_at", "expires_at"),
        mysql_engine="InnoDB",
    )


@contextmanager
def previous_version_row(url: str) -> Iterator[tuple[str, str]]:
    """A table of the previous version holding one session; its name and the key."""
    name, key = unique("sw_old"), new_key()
    engine = sa.create_engine(engine_url(url)[0], poolclass=NullPool)
    old = previous_version_table(name)
    try:
        with engine.begin() as conn:
            old.create(conn)
            conn.execute(
                old.insert(),
                {
                    "session_key": key,
                    # How the previous version stored a session: its whole JSON.
                    "data": b'{"cart": [1, 2], "user": "ada"}',
                    "created_at": NOW - 100,
                    "expires_at": NOW + HOUR,
                    "expiry": '["age",600]',
                },
            )
        yield name, key
    finally:
        old.drop(engine, checkfirst=True)
        engine.dispose()


def test_a_table_of_the_previous_version_is_upgraded_at_first_use(url: str) -> None:
    with previous_version_row(url) as (name, key), sql_store(url, table=name) as store:
        loaded = store.load(key, NOW)
        assert isinstance(loaded, Record)
        assert dict(loaded.fields) == {"cart": b'{"cart":[1,2]}', "user": b'{"user":"ada"}'}
        assert loaded.created_at == pytest.approx(NOW - 100)
        assert loaded.issued_at == loaded.touched_at == loaded.created_at
        assert loaded.expiry == Expiry("age", 600)
        assert loaded.user is None
        inspector = sa.inspect(store.engine)
        columns = {c["name"] for c in inspector.get_columns(name)}
        assert {"kind", "target", "key_at", "updated_at", "user_id"} <= columns
        assert f"ix_{name}_user_id" in {i["name"] for i in inspector.get_indexes(name)}
        # The old row takes every operation of the new contract.
        user_change = Change(
            set=fields(n="1"), expires_at=NOW + HOUR, user_changed=True, user="ada"
        )
        assert store.update(key, user_change, NOW) is True
        assert [info.id for info in store.user_sessions("ada", NOW)] == [info_id(key)]
        assert live_fields(store, key) == {
            "cart": b'{"cart":[1,2]}',
            "user": b'{"user":"ada"}',
            "n": field("n", "1"),
        }
        renewed = new_key()
        assert store.renew(key, renewed, NOW, NOW + 30) is True
        assert store.delete(renewed, NOW, NOW + 60) is True
        assert isinstance(store.load(renewed, NOW), Stale)


def test_two_stores_upgrading_one_old_table_at_once_both_work(url: str) -> None:
    with previous_version_row(url) as (name, key):
        stores = [SQLStore(url, table=name) for _ in range(4)]
        barrier = threading.Barrier(len(stores))

        def first_use(store: SQLStore) -> object:
            barrier.wait()
            return store.load(key, NOW)

        try:
            threads = [in_thread(first_use, store) for store in stores]
            for thread, _ in threads:
                thread.join()
            for _, outcome in threads:
                assert isinstance(outcome[0], Record), outcome
        finally:
            for store in stores:
                store.close()
        with sql_store(url, table=name) as store:
            assert store.update(key, setting(after="1"), NOW) is True


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


@pytest.mark.serial  # its 0.1 s bound holds on a quiet machine, not beside a second worker
def test_sqlite_writers_of_one_process_queue_instead_of_timing_out(tmp_path: Path) -> None:
    # 16 threads hammering one file with a short busy timeout: SQLite's own back-off
    # (sleeps up to 100 ms) makes waiters miss the lock past the timeout; queued, none does.
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", timeout=0.1)
    try:
        run_concurrent_updates(store, threads=16, per_thread=20)
    finally:
        store.close()


def assert_update_fails_after(
    store: SQLStore, key: str, at_least: float, at_most: float, match: str | None = None
) -> None:
    """An update blocked by another writer raises ``SessionStoreError`` once its timeout is
    up: not at once (it waited), and not never."""
    started = time.monotonic()
    with pytest.raises(SessionStoreError, match=match):
        store.update(key, setting(b="2"), NOW)
    assert at_least < time.monotonic() - started < at_most


def test_sqlite_writer_queue_wait_is_bounded_by_the_timeout(tmp_path: Path) -> None:
    store = SQLStore(f"sqlite:///{tmp_path / 's.db'}", timeout=0.5)
    other = SQLStore(f"sqlite:///{tmp_path / 's.db'}")  # same database: the same queue
    try:
        key = new_key()
        assert store.insert(key, record())
        with other._db.writing():
            assert_update_fails_after(store, key, at_least=0.4, at_most=5.0, match="timed out")
        assert store.update(key, setting(b="2"), NOW) is True
    finally:
        store.close()
        other.close()


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


# -- PostgreSQL durability -----------------------------------------------------------------


@contextmanager
def recorded_statements(store: SQLStore) -> Iterator[list[str]]:
    statements: list[str] = []

    def remember(*args: Any) -> None:
        statements.append(str(args[2]).strip())

    sa.event.listen(store.engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", remember)


DURABLE = "SET LOCAL synchronous_commit TO on"


@pytest.mark.postgres
def test_postgres_writes_commit_asynchronously_but_ending_keys_waits_for_the_flush() -> None:
    require_server("postgres")
    with sql_store(POSTGRES_URL) as store:
        keys = [new_key() for _ in range(4)]
        for key in keys:
            assert store.insert(key, record(user="u"))
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "off"
        ending: list[tuple[str, Callable[[], object]]] = [
            ("delete", lambda: store.delete(keys[0], NOW, NOW + 60)),
            ("rotate", lambda: store.rotate(keys[1], new_key(), record(), NOW, NOW + 60)),
            ("revoke_session", lambda: store.revoke_session("u", info_id(keys[2]), NOW)),
            ("revoke_user", lambda: store.revoke_user("u", now=NOW)),
        ]
        for name, operation in ending:
            with recorded_statements(store) as statements:
                assert operation(), name
            assert statements[0] == DURABLE, name
            assert any(s.startswith(("UPDATE", "DELETE")) for s in statements), name
        routine: list[Callable[[], object]] = [
            lambda: store.insert(new_key(), record()),
            lambda: store.update(keys[3], setting(x="1"), NOW),
            lambda: store.load(keys[3], NOW),
        ]
        for operation in routine:
            with recorded_statements(store) as statements:
                operation()
            assert DURABLE not in statements


# -- construction and failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:1/test", "mysql://root@127.0.0.1:1/test"]
)
def test_construction_does_not_connect_and_first_use_fails_within_the_timeout(url: str) -> None:
    store = SQLStore(url, table=unique("sw_sql"), timeout=2.0)  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(SessionStoreError) as info:
        store.load(new_key(), NOW)
    assert time.monotonic() - started < 10.0
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
        ({"timeout": float("inf")}, "timeout"),
        ({"url_or_engine": "not a url"}, "not a database URL"),
        ({"url_or_engine": "nosuchdb://h/x"}, "unusable database URL"),
    ],
)
def test_wrong_values_are_value_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"url_or_engine": "sqlite:///s.db", **kwargs}
    with pytest.raises(ValueError, match=message):
        SQLStore(**arguments)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url_or_engine": 5},
        {"table": 5},
        {"timeout": "5"},
        {"timeout": True},
        {"serializer": None},  # stores keep encoded fields: there is no serializer
    ],
)
def test_wrong_types_are_type_errors(kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"url_or_engine": "sqlite:///s.db", **kwargs}
    with pytest.raises(TypeError):
        SQLStore(**arguments)


def test_a_held_row_lock_fails_the_update_within_the_timeout(url: str) -> None:
    with sql_store(url, timeout=1.0) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))
        with open_transaction(store) as conn:
            if store.engine.dialect.name != "sqlite":
                locked = store.table.select().where(store.table.c.session_key == key)
                conn.execute(locked.with_for_update())
            assert_update_fails_after(store, key, at_least=0.8, at_most=8.0)
        assert store.update(key, setting(b="2"), NOW) is True


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_connection_dropped_by_the_server_is_replaced_unnoticed(
    kind: str, tmp_path: Path
) -> None:
    url = url_for(kind, tmp_path)
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
        with sql_store(url) as store:
            key = new_key()
            assert store.insert(key, record(fields(a="1")))
            with store.engine.connect() as conn:  # the one pooled connection
                before = int(str(conn.exec_driver_sql(whoami).scalar()))
            with admin.connect() as conn:
                conn.exec_driver_sql(kill.format(before))
                deadline = time.monotonic() + 5
                while (
                    conn.exec_driver_sql(alive.format(before)).scalar()
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.05)  # until the server side of our connection is gone
            time.sleep(0.05)
            assert isinstance(store.load(key, NOW), Record)
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql(whoami).scalar() != before
    finally:
        admin.dispose()


def test_close_releases_connections_and_the_store_still_works(store: SQLStore) -> None:
    key = new_key()
    assert store.insert(key, record(fields(a="1")))
    store.close()
    assert isinstance(store.load(key, NOW), Record)


# -- rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("data", b"\xff\xfenot a packed session"),
        ("data", b"[1, 2]"),
        ("expiry", "{not json"),
        ("kind", "weird"),
    ],
)
def test_an_unreadable_row_is_absent_with_one_warning_without_the_key(
    store: SQLStore, column: str, value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    assert store.insert(key, record(fields(a="1")))
    with store.engine.begin() as conn:
        conn.execute(store.table.update().values({column: value}))
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.load(key, NOW) is None
    warnings = [r for r in caplog.records if r.name.startswith("sessionware")]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert key_fingerprint(key) in warnings[0].getMessage()
    assert key not in caplog.text
    # An update cannot merge into what it cannot read: nothing is written.
    assert store.update(key, setting(b="2"), NOW) is False


def test_an_update_into_corrupt_json_writes_nothing(
    store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    key = new_key()
    assert store.insert(key, record(fields(a="1")))
    with store.engine.begin() as conn:
        conn.execute(store.table.update().values(data=b'{"a": oops'))
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert store.update(key, setting(b="2"), NOW) is False
    assert key_fingerprint(key) in caplog.text
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(store.table.c.data)).scalar_one() == b'{"a": oops'


def test_an_update_that_only_moves_the_expiry_keeps_the_data(store: SQLStore) -> None:
    key = new_key()
    assert store.insert(key, record(fields(a="1")))
    later = NOW + 5
    renew = Change(expires_at=NOW + 2 * HOUR, expiry_changed=True, expiry=Expiry("age", 60))
    assert store.update(key, renew, later) is True
    loaded = store.load(key, NOW)
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == fields(a="1")
    assert loaded.expires_at == pytest.approx(NOW + 2 * HOUR)
    assert loaded.expiry == Expiry("age", 60)
    assert loaded.touched_at == pytest.approx(later)
    assert store.update(new_key(), renew, NOW) is False


def test_an_expiry_only_update_of_an_ended_key_writes_nothing(store: SQLStore) -> None:
    flushed, renewed, successor = new_key(), new_key(), new_key()
    for key in (flushed, renewed):
        assert store.insert(key, record(fields(a="1")))
    assert store.delete(flushed, NOW, NOW + 60) is True
    assert store.renew(renewed, successor, NOW, NOW + 30) is True
    touch = Change(expires_at=NOW + 2 * HOUR)
    assert store.update(flushed, touch, NOW) is False
    pointer = store.update(renewed, touch, NOW)
    assert isinstance(pointer, Moved)
    assert pointer.key == successor
    for key, until in ((flushed, NOW + 60), (renewed, NOW + 30)):
        with store.engine.connect() as conn:
            row = conn.execute(
                sa.select(store.table.c.expires_at, store.table.c.data).where(
                    store.table.c.session_key == key
                )
            ).one()
        assert row.expires_at == pytest.approx(until)
        assert row.data == b""  # an ended key keeps no data


def test_clear_expired_deletes_records_and_markers_in_batches(store: SQLStore) -> None:
    store.clear_expired(NOW)  # creates the table

    def row(key: str, expires_at: float, kind: str) -> dict[str, Any]:
        return {
            "session_key": key,
            "data": b"{}",
            "created_at": NOW,
            "expires_at": expires_at,
            "kind": kind,
        }

    rows = [row(new_key(), NOW - i % 50, ("record", "stale", "moved")[i % 3]) for i in range(2500)]
    live = [new_key() for _ in range(10)]
    rows += [row(key, NOW + 1, "record") for key in live]
    with store.engine.begin() as conn:
        conn.execute(store.table.insert(), rows)
    with recorded_statements(store) as statements:
        store.clear_batch_size = 300
        assert store.clear_expired(NOW) == 2500
    deletes = [s for s in statements if s.upper().startswith("DELETE")]
    assert len(deletes) == 9  # 8 batches of 300 and one of 100
    assert count_rows(store) == len(live)
    assert all(isinstance(store.load(key, NOW), Record) for key in live)


# -- sizes -----------------------------------------------------------------------------------


def test_the_data_limit_is_known_after_first_use(store: SQLStore, kind: str) -> None:
    store.load(new_key(), NOW)
    with store.engine.connect() as conn:
        if kind == "mysql":
            packet = int(conn.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one())
            # Values travel escaped, up to two bytes each: half a packet, less the statement.
            assert store.max_data_bytes is not None
            assert packet // 2 - 100_000 < store.max_data_bytes < packet // 2
        elif kind == "sqlite":
            limit = conn.connection.dbapi_connection.getlimit(  # type: ignore[union-attr]
                sqlite3.SQLITE_LIMIT_LENGTH
            )
            assert store.max_data_bytes is not None
            assert limit - 100_000 < store.max_data_bytes < limit
        else:
            assert store.max_data_bytes is not None
            assert 2**28 < store.max_data_bytes < 2**29  # half of bytea's 1 GiB


@pytest.mark.mysql
def test_a_10_mb_session_is_too_large_for_mariadb_and_nothing_is_written() -> None:
    require_server("mysql")
    with sql_store(MYSQL_URL) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))
        # The server's default max_allowed_packet (16 MiB) takes 8 MiB of session data.
        big = fields(big="x" * 10_000_000)
        with pytest.raises(SessionTooLargeError, match="at most"):
            store.insert(new_key(), record(big))
        with pytest.raises(SessionTooLargeError):
            store.update(key, Change(set=big, expires_at=NOW + HOUR), NOW)
        other = new_key()
        with pytest.raises(SessionTooLargeError):
            store.rotate(key, other, record(big), NOW, NOW + 60)
        assert live_fields(store, key) == fields(a="1")
        assert store.load(other, NOW) is None


@pytest.mark.mysql
@pytest.mark.parametrize(
    "size",
    [
        # Escaped, just over the default 16 MiB packet: MariaDB answers "packet too large".
        9_000_000,
        # Far over it: MariaDB hangs up before answering ("server has gone away").
        17_000_000,
    ],
)
def test_a_write_mariadb_refuses_for_its_size_is_too_large_not_an_outage(size: int) -> None:
    require_server("mysql")
    with sql_store(MYSQL_URL) as store:
        store.load(new_key(), NOW)
        limit = store.max_data_bytes
        store.max_data_bytes = None  # skip the store's own check: the server must refuse
        key = new_key()
        # Quotes: two bytes each in the statement, as in a session of short strings.
        big = {"big": b'"' * size}
        with pytest.raises(SessionTooLargeError):
            store.insert(key, record(big))
        assert store.max_data_bytes == limit  # read again from the server
        assert store.load(key, NOW) is None
        assert store.insert(key, record(fields(a="1")))  # the pool recovered


def test_sqlite_refusing_a_blob_for_its_size_is_too_large(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")

    @sa.event.listens_for(engine, "connect")
    def small_rows(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 200_000)

    with sql_store(engine) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))
        assert store.max_data_bytes is not None
        assert store.max_data_bytes < 200_000
        with pytest.raises(SessionTooLargeError):
            store.insert(new_key(), record(fields(big="x" * 150_000)))  # our own check
        store.max_data_bytes = None
        with pytest.raises(SessionTooLargeError):  # SQLite's: "string or blob too big"
            store.update(key, Change(set=fields(big="x" * 300_000), expires_at=NOW + HOUR), NOW)
        assert live_fields(store, key) == fields(a="1")
    engine.dispose()


# -- logging ---------------------------------------------------------------------------------


@contextmanager
def every_logger_at_debug(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Whatever anyone configured, every logger (SQLAlchemy's, the drivers') at DEBUG."""
    names = ["", "sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "pymysql"]
    names += list(logging.root.manager.loggerDict)
    loggers = [logging.getLogger(name) for name in names]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    with caplog.at_level(logging.DEBUG):
        for lg in loggers:
            lg.setLevel(logging.DEBUG)
            lg.disabled = False
        try:
            yield
        finally:
            for lg, level, disabled in saved:
                lg.setLevel(level)
                lg.disabled = disabled


SECRET = "s3cr3t-card-4111111111111111"


def exercise(store: SQLStore) -> list[str]:
    """Every operation, on values that must not reach a log; the keys used."""
    keys = [new_key() for _ in range(4)]
    data = {"card": field("card", SECRET)}
    assert store.insert(keys[0], record(data, user="ada-secret-user"))
    assert isinstance(store.load(keys[0], NOW), Record)
    assert store.update(keys[0], Change(set=data, expires_at=NOW + HOUR), NOW) is True
    assert store.rotate(keys[0], keys[1], record(data, user="ada-secret-user"), NOW, NOW + 60)
    assert store.renew(keys[1], keys[2], NOW, NOW + 30) is True
    assert store.user_sessions("ada-secret-user", NOW)
    assert store.insert(keys[3], record(data, ttl=-10))
    assert store.revoke_session("ada-secret-user", info_id(keys[2]), NOW)
    assert store.revoke_user("ada-secret-user", now=NOW) == 0
    assert store.delete(keys[2], NOW, NOW + 60) is False
    assert store.clear_expired(NOW + 3600) >= 1
    return keys


@pytest.mark.parametrize("kind", KINDS)
def test_the_engine_of_a_url_never_logs_keys_or_data(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with sql_store(url) as store, every_logger_at_debug(caplog):
        keys = exercise(store)
    engine_logs = [r for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert engine_logs  # logging was on: statements are logged, parameters hidden
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in [*keys, SECRET, "ada-secret-user"]:
        assert secret not in text


def test_an_engine_logging_rows_would_show_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The check above can fail: SQLAlchemy's own engine logs the rows it fetches.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}", hide_parameters=True)
    with sql_store(engine) as store, every_logger_at_debug(caplog):
        keys = exercise(store)
    engine.dispose()
    assert SECRET in caplog.text
    assert any(key in caplog.text for key in keys)


# -- concurrency -----------------------------------------------------------------------------


def run_concurrent_updates(store: SQLStore, threads: int, per_thread: int) -> None:
    """A new session, then ``threads`` threads each setting ``per_thread`` keys of their own:
    every update succeeds and every key is kept."""
    key = new_key()
    assert store.insert(key, record())
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for i in range(per_thread):
                assert store.update(key, setting(**{f"t{t}-{i}": str(i)}), NOW) is True
        except BaseException as exc:  # re-raised in the test thread
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    expected = {f"t{t}-{i}": str(i) for t in range(threads) for i in range(per_thread)}
    assert live_fields(store, key) == fields(**expected)


def test_two_threads_of_fifty_updates_lose_nothing(store: SQLStore) -> None:
    run_concurrent_updates(store, threads=2, per_thread=50)


def test_more_concurrent_requests_than_pooled_connections_reuse_the_pool(store: SQLStore) -> None:
    # Past its size SQLAlchemy's default pool closes each connection handed back, so a
    # steady load reconnected on nearly every request; ours queues for a pooled one.
    opened: list[object] = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(None))
    run_concurrent_updates(store, threads=3 * POOL_SIZE, per_thread=20)
    assert len(opened) <= POOL_SIZE


def test_insert_losing_a_race_returns_false(store: SQLStore) -> None:
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
        thread, outcome = in_thread(store.insert, key, record(fields(loser="1")))
        time.sleep(0.3)
        assert thread.is_alive()  # blocked on the other transaction's row or lock
        conn.commit()
    thread.join()
    assert outcome == [False]
    assert live_fields(store, key) == {"winner": b'{"winner":1}'}


def test_racing_inserts_over_an_expired_row_replace_it_once(store: SQLStore) -> None:
    key = new_key()
    assert store.insert(key, record(fields(old="1"), ttl=-10))
    barrier = threading.Barrier(6)

    def insert(i: int) -> bool:
        barrier.wait()
        return store.insert(key, record(fields(new=str(i))))

    threads = [in_thread(insert, i) for i in range(6)]
    for thread, _ in threads:
        thread.join()
    results = [outcome[0] for _, outcome in threads]
    assert sorted(results) == [False] * 5 + [True]
    assert live_fields(store, key) == fields(new=str(results.index(True)))


def wait_until_blocked(store: SQLStore, admin: sa.Connection) -> None:
    """Until some transaction of the store waits for a row lock."""
    waiting = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
        "mysql": (
            "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"
        ),
    }[store.engine.dialect.name]
    deadline = time.monotonic() + 10
    while not admin.exec_driver_sql(waiting).scalar():
        admin.rollback()  # PostgreSQL shows the same activity for a whole transaction
        assert time.monotonic() < deadline, "the revocation never waited for the row lock"
        time.sleep(0.2)  # MariaDB refreshes innodb_trx only when unread for 0.1 s


@pytest.mark.parametrize("kind", SERVER_KINDS)
@pytest.mark.parametrize("ending", ["rotation", "renewal"])
def test_a_revocation_waiting_on_a_key_change_follows_it_to_the_new_key(
    url: str, ending: str
) -> None:
    with sql_store(url) as store:
        old, new, other = new_key(), new_key(), new_key()
        assert store.insert(old, record(user="u"))
        assert store.insert(other, record(user="u"))
        admin = sa.create_engine(engine_url(url)[0], poolclass=NullPool)
        with store.engine.connect() as conn, admin.connect() as watcher:
            # A rotation (or renewal) caught between its writes and its commit, using the
            # store's own statements.
            conn.begin()
            marker = STALE if ending == "rotation" else "moved"
            ended = {"k": old, "now": NOW} | ending_values(marker, NOW + 60, new)
            assert conn.execute(store._sql.end, ended).rowcount == 1
            blob = pack_fields({})
            conn.execute(
                store._sql.insert, {"k": new, "now": NOW, **record_values(record(user="u"), blob)}
            )
            thread, outcome = in_thread(store.revoke_user, "u", None, NOW)
            wait_until_blocked(store, watcher)
            conn.commit()
        thread.join()
        admin.dispose()
        assert outcome == [2]  # the other session and the new key; the old one had ended
        assert isinstance(store.load(new, NOW), Stale)
        assert store.user_sessions("u", NOW) == []


# -- the async twins on PostgreSQL and MariaDB: native drivers, no thread hop ----------------


def run_async(coroutine: Callable[[], Any]) -> Any:
    """One event loop per call, as pytest gives each async test (and uvicorn each worker)."""
    return asyncio.run(coroutine())


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_async_twins_run_on_the_event_loop_without_a_thread(url: str) -> None:
    with sql_store(url) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))  # the table exists: no first-use hop

        async def use() -> list[str]:
            threads: list[str] = []
            sa.event.listen(store.engine, "checkout", lambda *_: threads.append("sync"))
            loaded = await store.aload(key, NOW)
            assert isinstance(loaded, Record)
            assert await store.aupdate(key, setting(b="2"), NOW) is True
            assert await store.adelete(key, NOW, NOW + 60) is True
            assert isinstance(await store.aload(key, NOW), Stale)
            return threads

        before = threading.active_count()
        assert run_async(use) == []  # the sync engine was never used
        assert threading.active_count() == before


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_async_connections_close_with_their_event_loop(url: str) -> None:
    with sql_store(url) as store:
        assert store.insert(new_key(), record())
        native = store._async
        assert native is not None

        async def use() -> Any:
            assert await store.aload(new_key(), NOW) is None
            pool = await native.pool()
            assert pool is not None
            return pool._idle[0]

        first = run_async(use)
        second = run_async(use)
        assert first is not second  # each loop had its own connection
        for conn in (first, second):  # closed when its loop shut down
            if store.engine.dialect.name == "postgresql":
                assert conn.closed
            else:
                assert not conn.connected


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_more_concurrent_async_requests_than_pooled_connections_queue(url: str) -> None:
    with sql_store(url) as store:
        key = new_key()
        assert store.insert(key, record())

        async def burst() -> int:
            results = await asyncio.gather(
                *(store.aupdate(key, setting(**{f"k{i}": str(i)}), NOW) for i in range(40))
            )
            assert results == [True] * 40
            pool = await store._async.pool()  # type: ignore[union-attr]
            assert pool is not None
            return pool._open

        assert run_async(burst) <= POOL_SIZE
        assert live_fields(store, key) == fields(**{f"k{i}": str(i) for i in range(40)})


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_held_row_lock_fails_the_async_update_within_the_timeout(url: str) -> None:
    with sql_store(url, timeout=1.0) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))
        with open_transaction(store) as conn:
            locked = store.table.select().where(store.table.c.session_key == key)
            conn.execute(locked.with_for_update())
            started = time.monotonic()
            with pytest.raises(SessionStoreError):
                run_async(lambda: store.aupdate(key, setting(b="2"), NOW))
            assert 0.8 <= time.monotonic() - started <= 8.0

        async def after() -> Written:
            return await store.aupdate(key, setting(b="2"), NOW)

        assert run_async(after) is True  # the pool dropped the failed connection


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_an_async_connection_dropped_by_the_server_is_replaced_unnoticed(url: str) -> None:
    with sql_store(url) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))

        async def use() -> None:
            assert isinstance(await store.aload(key, NOW), Record)
            pool = await store._async.pool()  # type: ignore[union-attr]
            assert pool is not None
            conn = pool._idle[-1]
            if store.engine.dialect.name == "postgresql":
                ident = conn.info.backend_pid
                statement = f"SELECT pg_terminate_backend({ident})"
            else:
                async with conn.cursor() as cursor:
                    await cursor.execute("SELECT CONNECTION_ID()")
                    (ident,) = await cursor.fetchone()
                statement = f"KILL {ident}"
            with store.engine.connect() as admin:
                admin.exec_driver_sql(statement)
            await asyncio.sleep(0.2)  # the hang-up reaches the client
            assert isinstance(await store.aload(key, NOW), Record)
            assert pool._idle[-1] is not conn

        run_async(use)


@pytest.mark.mysql
def test_a_10_mb_session_is_too_large_for_mariadb_in_the_async_twins_too() -> None:
    require_server("mysql")
    with sql_store(MYSQL_URL) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))
        big = fields(big="x" * 10_000_000)

        async def writes() -> None:
            with pytest.raises(SessionTooLargeError, match="at most"):
                await store.ainsert(new_key(), record(big))
            with pytest.raises(SessionTooLargeError):
                await store.aupdate(key, Change(set=big, expires_at=NOW + HOUR), NOW)
            store.max_data_bytes = None  # skip our check: the server refuses it
            with pytest.raises(SessionTooLargeError):
                await store.ainsert(new_key(), record({"big": b'"' * 17_000_000}))
            assert isinstance(await store.aload(key, NOW), Record)  # the pool recovered

        run_async(writes)
        assert live_fields(store, key) == fields(a="1")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_the_async_twins_never_log_keys_or_data(url: str, caplog: pytest.LogCaptureFixture) -> None:
    async def exercise_async(store: SQLStore) -> list[str]:
        keys = [new_key() for _ in range(4)]
        data = {"card": field("card", SECRET)}
        assert await store.ainsert(keys[0], record(data, user="ada-secret-user"))
        assert isinstance(await store.aload(keys[0], NOW), Record)
        change = Change(set=data, expires_at=NOW + HOUR)
        assert await store.aupdate(keys[0], change, NOW) is True
        rotated = record(data, user="ada-secret-user")
        assert await store.arotate(keys[0], keys[1], rotated, NOW, NOW + 60)
        assert await store.arenew(keys[1], keys[2], NOW, NOW + 30) is True
        assert await store.auser_sessions("ada-secret-user", NOW)
        assert await store.ainsert(keys[3], record(data, ttl=-10))
        assert await store.arevoke_session("ada-secret-user", info_id(keys[2]), NOW)
        assert await store.arevoke_user("ada-secret-user", now=NOW) == 0
        assert await store.adelete(keys[2], NOW, NOW + 60) is False
        assert await store.aclear_expired(NOW + 3600) >= 1
        return keys

    with sql_store(url) as store, every_logger_at_debug(caplog):
        keys = run_async(lambda: exercise_async(store))
    text = caplog.text + "".join(repr(r.args) for r in caplog.records)
    for secret in [*keys, SECRET, "ada-secret-user"]:
        assert secret not in text


@pytest.mark.postgres
def test_async_writes_that_end_keys_wait_for_the_flush() -> None:
    require_server("postgres")
    with sql_store(POSTGRES_URL) as store:
        keys = [new_key() for _ in range(3)]
        for key in keys:
            assert store.insert(key, record(user="u"))
        native = store._async
        assert native is not None
        wanted: list[bool] = []
        begin = native.driver.begin

        async def recording_begin(conn: Any, durable: bool) -> None:
            wanted.append(durable)
            await begin(conn, durable)

        native.driver.begin = recording_begin  # type: ignore[method-assign]

        async def use() -> None:
            assert await store.aupdate(keys[0], setting(x="1"), NOW) is True
            assert await store.adelete(keys[0], NOW, NOW + 60) is True
            assert await store.arotate(keys[1], new_key(), record(), NOW, NOW + 60)
            assert await store.arevoke_user("u", now=NOW) == 1

        run_async(use)
        assert wanted == [False, True, True, True]


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:1/test", "mysql://root@127.0.0.1:1/test"]
)
def test_the_async_twins_fail_at_first_use_within_the_timeout(url: str) -> None:
    store = SQLStore(url, table=unique("sw_sql"), timeout=2.0)  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(SessionStoreError):
        run_async(lambda: store.aload(new_key(), NOW))
    assert time.monotonic() - started < 10.0
    store.close()


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_the_async_twins_work_under_trio_through_a_thread(url: str) -> None:
    trio = pytest.importorskip("trio")
    with sql_store(url) as store:
        key = new_key()
        assert store.insert(key, record(fields(a="1")))

        async def use() -> None:
            assert isinstance(await store.aload(key, NOW), Record)
            assert await store.aupdate(key, setting(b="2"), NOW) is True

        trio.run(use)
        assert live_fields(store, key) == fields(a="1", b="2")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_racing_async_inserts_over_an_expired_row_replace_it_once(url: str) -> None:
    with sql_store(url) as store:
        key = new_key()
        assert store.insert(key, record(fields(old="1"), ttl=-10))

        async def race() -> list[bool]:
            return list(
                await asyncio.gather(
                    *(store.ainsert(key, record(fields(new=str(i)))) for i in range(6))
                )
            )

        results = run_async(race)
        assert sorted(results) == [False] * 5 + [True]
        assert live_fields(store, key) == fields(new=str(results.index(True)))
