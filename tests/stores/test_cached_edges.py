"""CachedStore when a part fails at one exact step: the cache stopped between a read and the
write that follows it, or out for a while, and the store failing a revocation. The cache is
a private ``redis-server`` of the test (stopped and started at will), the store a
FileStore; ``Hooked`` stops the cache right after a chosen cache operation answered."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware._errors import SessionStoreError
from sessionware._keys import new_key
from sessionware.stores import CachedStore, FileStore, RedisStore
from sessionware.stores._cached_entries import Found, read_entry
from sessionware.stores.base import Record, SessionStore
from sessionware.testing.conformance import change, field, live, record
from tests.servers import PrivateRedis
from tests.stores.cached_parts import FAST, Hooked
from tests.stores.factories import unique

pytestmark = pytest.mark.redis

ADMIN, USER = field("role", "admin"), field("role", "user")


@pytest.fixture
def cache(private_redis: PrivateRedis) -> Iterator[RedisStore]:
    made = RedisStore(private_redis.url, prefix=unique("swcache") + ":", timeout=0.5)
    yield made
    made.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileStore]:
    made = FileStore(tmp_path / "sessions")
    yield made
    made.close()


def worker(cache: SessionStore, store: SessionStore, retry_after: float) -> CachedStore:
    """A CachedStore whose loads always fill (however slow the machine is) and whose
    revocations wait little; the cache is retried ``retry_after`` after a failure."""
    made = CachedStore(cache=cache, store=store)
    made.fill_deadline, made.seal_for = 30.0, FAST["seal_for"]
    made.cache_retry_after = retry_after
    return made


def cached(cache: RedisStore, key: str, now: float) -> Record | Found:
    """What the cache holds under ``key``: a copy, a seal, or nothing."""
    return read_entry(cache.load(key, now))


def test_while_the_cache_is_out_loads_and_sweeps_use_the_store_alone(
    cache: RedisStore,
    store: FileStore,
    private_redis: PrivateRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sessions = worker(cache, store, retry_after=60)
    key, dead, now = new_key(), new_key(), time.time()
    assert sessions.insert(key, record({"role": ADMIN}, now=now))
    assert sessions.insert(dead, record(now=now, ttl=10))
    assert live(sessions.load(key, now)).fields == {"role": ADMIN}
    assert isinstance(cached(cache, key, now), Record)  # filled
    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="sessionware"):
        assert live(sessions.load(key, now)).fields == {"role": ADMIN}  # the cache failed
        assert live(sessions.load(key, now)).fields == {"role": ADMIN}  # the cache skipped
        assert sessions.clear_expired(now + 60) == 1
        assert sessions.clear_expired(now + 60) == 0
    outages = [r for r in caplog.records if "session cache unavailable" in r.getMessage()]
    assert len(outages) == 1  # one warning per outage, however many operations skip it


def test_a_fill_the_cache_failed_is_sealed_once_it_is_back(
    cache: RedisStore, store: FileStore, private_redis: PrivateRedis
) -> None:
    hooked = Hooked(cache)
    sessions = worker(hooked, store, retry_after=0)
    key, now = new_key(), time.time()
    assert store.insert(key, record({"role": ADMIN}, now=now))
    hooked.after["load"] = private_redis.stop  # a miss, then the cache goes before the fill
    assert live(sessions.load(key, now)).fields == {"role": ADMIN}
    private_redis.start()  # empty: the fill never landed, but it might have, late
    assert sessions.load(new_key(), now) is None  # the next operation makes the seal good
    assert cached(cache, key, now) is Found.SEALED
    assert live(sessions.load(key, now)).fields == {"role": ADMIN}  # from the store


@pytest.mark.parametrize("fails_at", ["delete", "insert"])
def test_a_seal_the_cache_failed_is_owed_and_made_good_later(
    cache: RedisStore, store: FileStore, private_redis: PrivateRedis, fails_at: str
) -> None:
    hooked = Hooked(cache)
    sessions = worker(hooked, store, retry_after=0)
    key, now = new_key(), time.time()
    assert sessions.insert(key, record({"role": ADMIN}, now=now))
    if fails_at == "delete":  # the seal's first step fails
        private_redis.stop()
    else:  # no copy to turn into a seal, then the cache goes before the seal is inserted
        hooked.after["delete"] = private_redis.stop
    assert sessions.update(key, change(now, set={"role": USER}), now) is True
    assert live(store.load(key, now)).fields == {"role": USER}
    private_redis.start()
    assert sessions.load(new_key(), now) is None  # the next operation makes the seal good
    assert cached(cache, key, now) is Found.SEALED
    assert live(sessions.load(key, now)).fields == {"role": USER}


def test_seals_still_owed_while_the_cache_is_out_wait_for_it(
    cache: RedisStore, store: FileStore, private_redis: PrivateRedis
) -> None:
    sessions = worker(cache, store, retry_after=0)
    keys, now = [new_key(), new_key()], time.time()
    for key in keys:
        assert sessions.insert(key, record({"role": ADMIN}, now=now))
    private_redis.stop()
    for key in keys:  # each seal fails: owed
        assert sessions.update(key, change(now, set={"role": USER}), now) is True
    # The cache is worth trying again, and still fails: the first owed seal stops the rest.
    assert sessions.load(new_key(), now) is None
    assert [live(sessions.load(key, now)).fields for key in keys] == [{"role": USER}] * 2
    private_redis.start()
    assert sessions.load(new_key(), now) is None
    assert [cached(cache, key, now) for key in keys] == [Found.SEALED] * 2


def test_a_revocation_the_store_failed_still_seals_the_cached_copies(
    cache: RedisStore, tmp_path: Path
) -> None:
    directory = tmp_path / "sessions"
    store = FileStore(directory)
    sessions = worker(cache, store, retry_after=60)
    key, now = new_key(), time.time()
    try:
        assert sessions.insert(key, record({"role": ADMIN}, now=now, user="ada"))
        assert live(sessions.load(key, now)).fields == {"role": ADMIN}
        assert isinstance(cached(cache, key, now), Record)
        directory.rename(tmp_path / "elsewhere")
        directory.write_bytes(b"not a directory")  # the store fails every operation
        with pytest.raises(SessionStoreError, match="revoke_user"):
            sessions.revoke_user("ada", now=now)
        assert not isinstance(cached(cache, key, now), Record)  # it may have landed
    finally:
        store.close()


def test_a_revocation_whose_second_seal_failed_owes_it(
    cache: RedisStore, store: FileStore, private_redis: PrivateRedis
) -> None:
    hooked = Hooked(cache)
    sessions = worker(hooked, store, retry_after=0)
    key, now = new_key(), time.time()
    assert sessions.insert(key, record({"role": ADMIN}, now=now, user="ada"))
    hooked.after["revoke_user"] = private_redis.stop  # the first seal lands, the second fails
    assert sessions.revoke_user("ada", now=now) == 1
    assert sessions.load(key, now) is not None  # a Stale marker, from the store
    assert not isinstance(sessions.load(key, now), Record)
    private_redis.start()
    other = new_key()
    assert store.insert(other, record(now=now, user="ada"))
    assert sessions.load(new_key(), now) is None  # the owed revocation is made good
    assert live(sessions.load(other, now)).user == "ada"
