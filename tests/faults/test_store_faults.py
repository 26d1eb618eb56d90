"""Fault injection against real servers (SECURITY.md, "Store outages"): a store that stops
answering at a chosen point of a request gives a 503 within its timeout, never a hang or
a 500; nothing half-written is served; and the app recovers by itself, without a restart.

Faults: a private redis-server frozen with SIGSTOP (before a load, between a load and its
save, during a logout) and resumed with SIGCONT; PostgreSQL connections killed with
``pg_terminate_backend``; a FileStore lock held by another process.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sessionware._options import Options
from sessionware.stores import FileStore, RedisStore, SQLStore
from sessionware.stores.base import Loaded, SessionStore
from tests.apps import build_app
from tests.clients import Client
from tests.counting import CountingStore
from tests.servers import POSTGRES_URL, PrivateRedis, require_server

APP_KINDS = ["starlette", "plain-wsgi"]
TIMEOUT = 0.5
# How long past the timeout a refusal may take: connecting, a retry, the test client.
SLACK = 1.5


class Hooked(CountingStore):
    """Runs ``after_load`` once, right after the next load of the request under test."""

    def __init__(self, inner: SessionStore) -> None:
        super().__init__(inner)
        self.after_load: Callable[[], object] | None = None

    def _fire(self) -> None:
        hook, self.after_load = self.after_load, None
        if hook is not None:
            hook()

    def load(self, key: str, now: float) -> Loaded:
        loaded = super().load(key, now)
        self._fire()
        return loaded

    async def aload(self, key: str, now: float) -> Loaded:
        loaded = await super().aload(key, now)
        self._fire()
        return loaded


Make = Callable[..., Client]


@pytest.fixture(params=APP_KINDS)
def make(request: pytest.FixtureRequest) -> Iterator[Make]:
    kind: str = request.param
    with ExitStack() as stack:

        def client(store: SessionStore, **options: Any) -> Client:
            app = build_app(kind, Options(store=store, **options))  # type: ignore[typeddict-item]
            return Client(app, kind != "plain-wsgi", stack)

        yield client


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


# -- Redis frozen ------------------------------------------------------------------------------


@pytest.fixture
def redis_store(private_redis: PrivateRedis) -> Iterator[Hooked]:
    store = RedisStore(private_redis.url, timeout=TIMEOUT)
    yield Hooked(store)
    private_redis.resume()
    store.close()


@pytest.mark.redis
def test_a_frozen_redis_is_a_503_within_the_timeout_and_recovers(
    make: Make, redis_store: Hooked, private_redis: PrivateRedis
) -> None:
    client = make(redis_store)
    client.get("/set?k=user&v=ada")
    private_redis.pause()
    response, took = timed(lambda: client.get("/read"))
    assert response.status_code == 503
    assert took < TIMEOUT + SLACK
    assert response.headers.get("set-cookie") is None
    private_redis.resume()
    assert client.get("/read").json()["data"] == {"user": "ada"}  # no restart needed


@pytest.mark.redis
def test_a_redis_frozen_between_load_and_save_leaves_a_whole_session(
    make: Make, redis_store: Hooked, private_redis: PrivateRedis
) -> None:
    client = make(redis_store)
    client.get("/set?k=user&v=ada")
    redis_store.after_load = private_redis.pause
    response, took = timed(lambda: client.get("/set?k=user&v=eve"))
    assert response.status_code == 503
    assert took < TIMEOUT + SLACK
    private_redis.resume()
    # The write may have reached the server before it froze (then it applies, whole,
    # when it resumes) or not: either way the session is one of the two, never a mix.
    assert client.get("/read").json()["data"] in ({"user": "ada"}, {"user": "eve"})


@pytest.mark.redis
def test_a_logout_that_met_a_frozen_redis_can_be_repeated_and_is_then_final(
    make: Make, redis_store: Hooked, private_redis: PrivateRedis
) -> None:
    client = make(redis_store)
    client.get("/set?k=user&v=ada")
    cookie = client.session_cookie
    assert cookie is not None
    redis_store.after_load = private_redis.pause
    assert client.get("/flush").status_code == 503  # the user is told it failed
    private_redis.resume()
    client.cookies.set("sessionid", cookie, domain="testserver.local", path="/")
    assert client.get("/flush").status_code == 200
    stolen = make(redis_store)
    stolen.cookies.set("sessionid", cookie, domain="testserver.local", path="/")
    assert stolen.get("/read").json() == {"key": None, "data": {}}


# -- PostgreSQL connections killed ----------------------------------------------------------


def kill_connections(table: str) -> int:
    """``pg_terminate_backend`` every connection of this test's store (by its app name)."""
    engine = sa.create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    mine = {"name": table}
    with engine.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            mine,
        ).scalar_one()
        # pg_terminate_backend only signals: wait until the backends are gone, so the
        # next request meets dead connections (not ones that die mid-query).
        deadline = time.monotonic() + 5
        count = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        while conn.execute(count, mine).scalar_one():
            assert time.monotonic() < deadline, "terminated backends are still running"
            time.sleep(0.01)
            conn.commit()  # pg_stat_activity is a snapshot per transaction
    engine.dispose()
    return int(killed)


@pytest.mark.postgres
def test_killed_postgres_connections_are_replaced_unnoticed(make: Make) -> None:
    require_server("postgres")
    table = f"sw_fault_{int(time.time() * 1000) % 10**9}"
    store = SQLStore(f"{POSTGRES_URL}?application_name={table}", table=table, timeout=TIMEOUT)
    try:
        client = make(store)
        client.get("/set?k=user&v=ada")
        assert kill_connections(table) >= 1
        assert client.get("/read").json()["data"] == {"user": "ada"}
        client.get("/set?k=n&v=1")
        assert kill_connections(table) >= 1
        assert client.get("/read").json()["data"] == {"user": "ada", "n": "1"}
    finally:
        store.drop_table()
        store.close()


# -- a FileStore lock held by another process ---------------------------------------------------


def _hold_locks(directory: str, held: Any, release: Any) -> None:
    handles = []
    for path in sorted(Path(directory).glob(".lock-*")):
        handle = path.open("a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        handles.append(handle)
    held.set()
    release.wait(30)


def test_a_held_file_lock_is_a_503_within_the_timeout_and_recovers(
    make: Make, tmp_path: Path
) -> None:
    store = FileStore(tmp_path / "sessions", timeout=TIMEOUT)
    client = make(store)
    client.get("/set?k=user&v=ada")
    for stripe in range(64):  # every stripe exists, so the holder can take them all
        (tmp_path / "sessions" / f".lock-{stripe:02d}").touch()
    held, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(
        target=_hold_locks, args=(str(tmp_path / "sessions"), held, release)
    )
    holder.start()
    try:
        assert held.wait(10)
        assert client.get("/read").json()["data"] == {"user": "ada"}  # readers take no lock
        response, took = timed(lambda: client.get("/set?k=user&v=eve"))
        assert response.status_code == 503
        assert took < TIMEOUT + SLACK
    finally:
        release.set()
        holder.join(10)
    assert client.get("/set?k=user&v=eve").status_code == 200
    assert client.get("/read").json()["data"] == {"user": "eve"}
