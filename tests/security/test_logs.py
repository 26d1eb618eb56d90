"""Logs never contain a raw session key, a cookie value or session data.

Login, logout, a concurrent logout (conflict), unreadable cookies and records, a store
outage and an oversized cookie are driven with every logger at DEBUG; where a log line
needs to name a session, it carries the short keyed hash ``key_fingerprint(key)``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from sessionware._keys import key_fingerprint, new_key
from sessionware._records import Loaded
from sessionware.stores import CookieStore, MemoryStore, RedisStore, SQLStore
from sessionware.stores.base import SessionStore
from tests.conftest import MakeClient
from tests.counting import CountingStore
from tests.security.support import (
    as_json,
    is_deletion,
    replay,
    sent_value,
    session_cookies,
)
from tests.servers import PrivateRedis
from tests.stores.factories import ALL_KINDS, make_store

SECRET_KEY = "logs-secret-0123456789abcdef0123456789"
PASSWORD = "pw-Tr0ub4dor-and-3"
CARD = "4111-1111-1111-1111"
TOKEN = "api-token-7f3a9c"
DATA_VALUES = {PASSWORD, CARD, TOKEN}
CLIENT_LOGGERS = ("httpx", "httpcore")  # the test client logs its URLs, data included


class RacingStore(CountingStore):
    """A real store on which a concurrent request logs the session out right after
    this request loaded it (``armed``), so this request's save meets a deleted record."""

    armed = False

    def load(self, key: str, now: float) -> Loaded:
        record = super().load(key, now)
        if self.armed and record is not None:
            self.armed = False
            self.inner.delete(key, now, now + 60)
        return record

    async def aload(self, key: str, now: float) -> Loaded:
        record = await super().aload(key, now)
        if self.armed and record is not None:
            self.armed = False
            await self.inner.adelete(key, now, now + 60)
        return record


def rendered(record: logging.LogRecord) -> str:
    """Everything a handler could write out of the record."""
    parts = [record.getMessage(), str(record.msg), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]


def assert_nothing_secret(records: list[logging.LogRecord], secrets: set[str]) -> None:
    assert all(len(s) >= 8 for s in secrets)
    for record in records:
        text = rendered(record)
        leaked = sorted(s for s in secrets if s in text)
        assert leaked == [], (record.name, record.getMessage())


@pytest.fixture(params=[False, True], ids=["plain-keys", "signed-keys"])
def signed(request: pytest.FixtureRequest) -> bool:
    value: bool = request.param
    return value


def test_login_logout_and_conflict_logs_show_no_key_and_no_data(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, signed: bool
) -> None:
    store = RacingStore(MemoryStore())
    options = {"store": store, **({"secret_key": SECRET_KEY} if signed else {})}
    client = make_client(**options)
    seen: set[str] = set()
    with caplog.at_level(logging.DEBUG):
        anonymous = sent_value(client.get("/set?k=cart&v=3"))
        anonymous_key = as_json(replay(client, anonymous))["key"]
        login = replay(client, anonymous, "/cycle")  # login: a new key for the session
        cookie = sent_value(login)
        key = as_json(login)["key"]
        replay(client, cookie, f"/set?k=password&v={PASSWORD}")
        store.armed = True  # another request logs out while this one saves
        conflict = replay(client, cookie, f"/set?k=card&v={CARD}")
        assert session_cookies(conflict) == []  # dropped: the cookie is left alone
        other = sent_value(client.get(f"/set?k=token&v={TOKEN}"))
        other_key = as_json(replay(client, other))["key"]
        assert is_deletion(replay(client, other, "/flush"))  # logout
        for replayed in (anonymous, cookie, other, other + "x", new_key()):
            replay(client, replayed)
        seen |= {anonymous, anonymous_key, cookie, key, other, other_key}
    records = ours(caplog)
    (warning,) = [r for r in records if r.levelno >= logging.WARNING]
    assert "concurrent" in warning.getMessage()
    assert key_fingerprint(key) in warning.getMessage()  # the session, named by its hash
    assert_nothing_secret(records, seen | DATA_VALUES)


@pytest.fixture
def redis_store(private_redis: PrivateRedis) -> Iterator[RedisStore]:
    store = RedisStore(private_redis.url, timeout=0.5)
    try:
        yield store
    finally:
        store.close()


def test_unreadable_record_and_outage_logs_show_no_key_and_no_data(
    make_client: MakeClient,
    caplog: pytest.LogCaptureFixture,
    private_redis: PrivateRedis,
    redis_store: RedisStore,
) -> None:
    client = make_client(store=redis_store)
    corrupt = new_key()
    private_redis.command("HSET", redis_store.prefix + corrupt, "junk", TOKEN)
    with caplog.at_level(logging.DEBUG):
        cookie = sent_value(client.get(f"/set?k=password&v={PASSWORD}"))
        assert as_json(replay(client, corrupt))["data"] == {}
        private_redis.stop()
        assert replay(client, cookie).status_code == 503
        assert replay(client, cookie, f"/set?k=card&v={CARD}").status_code == 503
        client.cookies.clear()
        assert client.get(f"/set?k=token&v={TOKEN}").status_code == 503
    records = ours(caplog)
    unreadable = [r for r in records if "unreadable" in r.getMessage()]
    assert [key_fingerprint(corrupt) in r.getMessage() for r in unreadable] == [True]
    failures = [
        r for r in records if r.name.startswith("sessionware") and r.levelno >= logging.ERROR
    ]
    assert len(failures) == 3  # two failed loads, one failed save: each logged with its cause
    assert_nothing_secret(records, {cookie, corrupt} | DATA_VALUES)


def test_sql_store_failure_logs_show_no_key_and_no_data(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    path = tmp_path / "sessions.db"
    with ExitStack() as stack:
        store = SQLStore(f"sqlite:///{path}", timeout=0.2)
        stack.callback(store.close)
        client = make_client(store=store)
        cookie = sent_value(client.get(f"/set?k=password&v={PASSWORD}"))
        key = as_json(replay(client, cookie))["key"]
        locker = sqlite3.connect(path, isolation_level=None)
        stack.callback(locker.close)
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        with caplog.at_level(logging.DEBUG):
            assert replay(client, cookie, f"/set?k=card&v={CARD}").status_code == 503
            assert replay(client, cookie, "/cycle").status_code == 503
        locker.execute("ROLLBACK")
    records = ours(caplog)
    failures = [
        r for r in records if r.name.startswith("sessionware") and r.levelno >= logging.ERROR
    ]
    assert len(failures) == 2
    assert_nothing_secret(records, {cookie, key} | DATA_VALUES)


def test_an_oversized_cookie_log_shows_no_data(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(store=CookieStore(encrypt=True), secret_key=SECRET_KEY)
    cookie = sent_value(client.get(f"/set?k=password&v={PASSWORD}"))
    with caplog.at_level(logging.DEBUG):
        response = replay(client, cookie, f"/set?k=card&v={CARD}{'x' * 5000}")
    assert response.status_code == 500
    records = ours(caplog)
    assert [r.levelno for r in records if r.name.startswith("sessionware")] == [logging.ERROR]
    assert_nothing_secret(records, {cookie} | DATA_VALUES)


@pytest.fixture
def every_logger_at_debug() -> Iterator[logging.Handler]:
    """Every logger of the process at DEBUG (sqlalchemy.engine, redis, ours...), captured."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    handler.records = records  # type: ignore[attr-defined]
    names = ["", *logging.root.manager.loggerDict]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.root.addHandler(handler)
    try:
        yield handler
    finally:
        logging.root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture(params=ALL_KINDS)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    with make_store(request.param, tmp_path) as store:
        yield store


def test_a_whole_session_life_at_debug_logs_no_key_and_no_data(
    make_client: MakeClient,
    any_store: SessionStore,
    every_logger_at_debug: logging.Handler,
) -> None:
    """Login, work, rotation, logout and the purge, with every logger at DEBUG, on every
    server-side store: nothing logged anywhere names a key, a cookie or a value."""
    server_store = any_store
    client = make_client(store=server_store)
    anonymous = sent_value(client.get(f"/set?k=password&v={PASSWORD}"))
    login = replay(client, anonymous, "/cycle")
    cookie = sent_value(login)
    replay(client, cookie, f"/set?k=card&v={CARD}")
    replay(client, cookie, f"/set?k=token&v={TOKEN}")
    keys = {as_json(replay(client, cookie))["key"], as_json(login)["before"]}
    assert is_deletion(replay(client, cookie, "/flush"))
    server_store.clear_expired(time.time() + 10 * 365 * 86400)
    records: list[logging.LogRecord] = every_logger_at_debug.records  # type: ignore[attr-defined]
    seen = [r for r in records if not r.name.startswith(CLIENT_LOGGERS)]
    assert_nothing_secret(seen, {anonymous, cookie, *keys} | DATA_VALUES)
