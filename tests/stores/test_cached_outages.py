"""CachedStore when its cache fails: a private redis-server that refuses writes (``CLIENT
PAUSE WRITE``: a write times out and is dropped when its client gives up), freezes
(SIGSTOP) or stops. Each test holds the CachedStore to a bound its docstring states."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sessionware._expiry import Expiry
from sessionware._keys import new_key
from sessionware.stores import CachedStore, FileStore, RedisStore
from sessionware.stores._cached_entries import Found, read_entry
from sessionware.stores.base import Loaded, Record, Stale
from sessionware.testing.conformance import change, field, live, record
from tests.counting import CountingStore
from tests.servers import PrivateRedis
from tests.stores.cached_parts import BACKINGS, Site, backing
from tests.stores.test_redis import CLOSED_URL, MODES, twin

ADMIN, USER = field("role", "admin"), field("role", "user")
# Their bounds are timings of a private server (timeouts of 0.3 s, pauses): they run
# apart from the parallel run, on a quiet machine (.ci/run).
pytestmark = pytest.mark.serial


@pytest.fixture(params=BACKINGS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, private_redis: PrivateRedis
) -> Iterator[Site]:
    with backing(request.param, tmp_path) as open_store:
        made = Site(open_store, cache_url=private_redis.url, cache_timeout=0.3)
        yield made
        made.close()


@contextmanager
def writes_refused(server: PrivateRedis) -> Iterator[None]:
    """The cache serves reads but takes no write: every write times out, and is dropped
    (never applied) when its client gives up."""
    assert server.command("CLIENT", "PAUSE", "60000", "WRITE") == b"+OK"
    try:
        yield
    finally:
        deadline = time.monotonic() + 10
        while server.info("clients", "blocked_clients") != "0":
            assert time.monotonic() < deadline, "a timed-out write is still waiting"
            time.sleep(0.01)
        assert server.command("CLIENT", "UNPAUSE") == b"+OK"


def role(loaded: Loaded) -> bytes:
    return live(loaded).fields["role"]


def cached_role(site: Site, key: str, now: float) -> bytes | None:
    entry = read_entry(site.cache.load(key, now))
    return entry.fields["role"] if isinstance(entry, Record) else None


# -- a save the cache missed --------------------------------------------------------------------


def test_a_save_the_cache_missed_is_seen_everywhere_once_the_writer_is_back(
    site: Site, private_redis: PrivateRedis
) -> None:
    """The writer never serves the old copy; every other worker sees the save as soon as
    the writer's next operation (any key) has made its seal good."""
    writer, reader = site.worker(cache_retry_after=0), site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    assert role(reader.load(key, now)) == ADMIN
    with writes_refused(private_redis):
        assert writer.update(key, change(now, set={"role": USER}), now) is True
        assert role(writer.load(key, now)) == USER
    # The cache write timed out: dropped (the old copy stays, its seal lost with the
    # write), or applied late by a server that read it only after the pause (nothing
    # cached). Never the new data without the writer knowing, and never served below.
    assert cached_role(site, key, now) in (ADMIN, None)
    assert writer.load(new_key(), now) is None  # the writer's next operation
    assert cached_role(site, key, now) is None
    for worker in (reader, site.worker()):
        assert role(worker.load(key, now)) == USER


def test_a_copy_the_cache_kept_by_mistake_dies_within_cache_ttl(
    site: Site, private_redis: PrivateRedis
) -> None:
    """Without the writer coming back, no worker serves the old copy ``cache_ttl`` after
    it was filled."""
    writer, reader = site.worker(cache_ttl=5), site.worker(cache_ttl=5)
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    assert role(reader.load(key, now)) == ADMIN  # filled at `now`
    with writes_refused(private_redis):
        assert writer.update(key, change(now, set={"role": USER}), now) is True
    assert role(reader.load(key, now + 5)) == USER
    assert role(site.worker(cache_ttl=5).load(key, now + 5)) == USER


def test_a_save_over_a_copy_the_cache_kept_leaves_cache_and_store_agreeing(
    site: Site, private_redis: PrivateRedis
) -> None:
    """A later save by another worker is never applied to the stale copy."""
    writer, other = site.worker(), site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    assert role(other.load(key, now)) == ADMIN
    with writes_refused(private_redis):
        assert writer.update(key, change(now, set={"role": USER}), now) is True
    assert other.update(key, change(now, set={"seen": b"1"}), now) is True
    expected = {"role": USER, "seen": b"1"}
    assert dict(live(site.store.load(key, now)).fields) == expected
    assert dict(live(other.load(key, now)).fields) == expected
    assert cached_role(site, key, now) is None


@pytest.mark.parametrize("after", ["the writer is back", "cache_ttl"])
def test_a_shorter_life_the_cache_missed_is_honoured(
    site: Site, private_redis: PrivateRedis, after: str
) -> None:
    writer, reader = site.worker(cache_ttl=5, cache_retry_after=0), site.worker(cache_ttl=5)
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    assert live(reader.load(key, now))
    shorter = change(now, ttl=2, expiry_changed=True, expiry=Expiry("age", 2))
    with writes_refused(private_redis):
        assert writer.update(key, shorter, now) is True
    if after == "the writer is back":
        assert writer.load(new_key(), now) is None
        assert reader.load(key, now + 3) is None
    else:
        assert reader.load(key, now + 5) is None


def test_a_frozen_cache_costs_no_error_and_serves_nothing_stale(
    site: Site, private_redis: PrivateRedis
) -> None:
    writer, reader = site.worker(cache_retry_after=0), site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    assert role(reader.load(key, now)) == ADMIN
    private_redis.pause()
    try:
        assert writer.update(key, change(now, set={"role": USER}), now) is True
        assert role(writer.load(key, now)) == USER
        assert role(reader.load(key, now)) == USER  # its cache read times out
    finally:
        private_redis.resume()
    assert writer.load(new_key(), now) is None
    for worker in (reader, site.worker()):
        assert role(worker.load(key, now)) == USER


# -- logins, logouts and revocations during an outage -------------------------------------------


@MODES
def test_logins_logouts_and_revocations_work_while_the_cache_is_down(
    mode: str, site: Site, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    worker = site.worker()
    old, other, now = new_key(), new_key(), time.time()
    for key in (old, other):
        assert worker.insert(key, record({"role": USER}, now=now, user="u"))
        assert live(worker.load(key, now))
    private_redis.stop()
    caplog.set_level(logging.INFO, logger="sessionware")
    new = new_key()
    login = record({"role": USER}, now=now, user="u")
    assert twin(mode, worker, "rotate")(old, new, login, now, now + 60) is True
    assert isinstance(twin(mode, worker, "load")(old, now), Stale)
    assert live(twin(mode, worker, "load")(new, now)).user == "u"
    assert twin(mode, worker, "revoke_user")("u", new, now) == 1
    assert isinstance(twin(mode, worker, "load")(other, now), Stale)
    assert twin(mode, worker, "delete")(new, now, now + 60) is True
    assert isinstance(twin(mode, worker, "load")(new, now), Stale)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "session cache unavailable" in warnings[0].getMessage()
    for key in (old, other, new):
        assert key not in caplog.text
    private_redis.start()  # an empty cache, on the same port
    for key in (old, other, new):
        assert isinstance(site.worker().load(key, now), Stale)


def test_a_logout_the_cache_missed_never_comes_back(
    site: Site, private_redis: PrivateRedis
) -> None:
    """Dead at once for the worker that logged out; dead for every worker from the
    writer's next operation on (see the next test for the bound without it)."""
    writer, reader = site.worker(cache_retry_after=0), site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": USER}, now=now))
    assert live(reader.load(key, now))
    with writes_refused(private_redis):
        assert writer.delete(key, now, now + 60) is True
        assert isinstance(writer.load(key, now), Stale)
    assert writer.load(new_key(), now) is None
    assert read_entry(site.cache.load(key, now)) is Found.SEALED
    for worker in (reader, site.worker()):
        assert isinstance(worker.load(key, now), Stale)


def test_a_logout_the_cache_missed_is_dead_everywhere_within_cache_ttl(
    site: Site, private_redis: PrivateRedis
) -> None:
    writer, reader = site.worker(cache_ttl=5), site.worker(cache_ttl=5)
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": USER}, now=now))
    assert live(reader.load(key, now))  # filled at `now`
    with writes_refused(private_redis):
        assert writer.delete(key, now, now + 60) is True
    assert isinstance(reader.load(key, now + 5), Stale)


def test_a_revocation_the_cache_missed_is_made_good_when_it_is_back(
    site: Site, private_redis: PrivateRedis
) -> None:
    writer, reader = site.worker(cache_retry_after=0), site.worker()
    keys, now = [new_key(), new_key()], time.time()
    for key in keys:
        assert writer.insert(key, record({"role": USER}, now=now, user="u"))
        assert live(reader.load(key, now))
    with writes_refused(private_redis):
        assert writer.revoke_user("u", now=now) == 2
        for key in keys:  # the cache still has the copies: the writer does not trust them
            assert isinstance(writer.load(key, now), Stale)
    assert writer.load(new_key(), now) is None
    for key in keys:
        assert isinstance(reader.load(key, now), Stale)


# -- skipping a failed cache ---------------------------------------------------------------------


def test_a_failed_cache_is_skipped_for_a_while_then_tried_again(tmp_path: Path) -> None:
    now = time.time()
    for retry_after, attempts in ((60.0, 1), (0.0, 3)):
        cache = CountingStore(RedisStore(CLOSED_URL))
        worker = CachedStore(cache=cache, store=FileStore(tmp_path))
        worker.cache_retry_after = retry_after
        key = new_key()
        assert worker.insert(key, record({"role": USER}, now=now))
        for _ in range(3):
            assert role(worker.load(key, now)) == USER
        assert cache.calls["load"] == attempts
        worker.close()
