"""CachedStore on a real Redis cache and a real store: the whole contract (the kit), the
cost of each operation, coherence between workers, races between a fill and a write,
lifetimes, and which components it accepts. Outages are in ``test_cached_outages``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionware._errors import SessionStoreError
from sessionware._expiry import Expiry
from sessionware._keys import info_id, new_key
from sessionware.stores import CachedStore, CookieStore, FileStore, MemoryStore, RedisStore
from sessionware.stores._cached_entries import META, Found, read_entry
from sessionware.stores.base import Loaded, Record, SessionStore, Stale
from sessionware.testing.conformance import (
    HOUR,
    StoreConformance,
    change,
    field,
    fields,
    live,
    record,
)
from tests.counting import CountingStore
from tests.servers import REDIS_URL
from tests.stores.cached_parts import BACKINGS, FAST, Hooked, Site, backing, load_until_cached
from tests.stores.factories import unique
from tests.stores.test_redis import MODES, twin

pytestmark = pytest.mark.redis


@pytest.fixture(params=BACKINGS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    with backing(request.param, tmp_path) as open_store:
        made = Site(open_store)
        yield made
        made.close()


def role(loaded: Loaded) -> bytes:
    return live(loaded).fields["role"]


ADMIN, USER = field("role", "admin"), field("role", "user")


# -- the contract -----------------------------------------------------------------------------


class TestCachedConformance(StoreConformance):
    """The whole contract through a Redis cache, on each kind of store."""

    @pytest.fixture
    def store(self, site: Site) -> SessionStore:
        return site.worker()


class TestCachedInOneProcess(StoreConformance):
    """The same with a MemoryStore cache, declared single-process."""

    @pytest.fixture(params=BACKINGS)
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
        with backing(request.param, tmp_path) as open_store:
            cached = CachedStore(cache=MemoryStore(), store=open_store(), single_process=True)
            for name, value in FAST.items():
                setattr(cached, name, value)
            yield cached


# -- cost -------------------------------------------------------------------------------------


@pytest.fixture
def counted(site: Site) -> tuple[CachedStore, CountingStore, CountingStore]:
    cache, store = CountingStore(site.cache), CountingStore(site.store)
    return CachedStore(cache=cache, store=store), cache, store


def calls(*parts: CountingStore) -> tuple[dict[str, int], ...]:
    return tuple(dict(part.calls) for part in parts)


def reset(*parts: CountingStore) -> None:
    for part in parts:
        part.reset()


@MODES
def test_a_hit_is_one_cache_read_and_no_store_call(
    mode: str, counted: tuple[CachedStore, CountingStore, CountingStore]
) -> None:
    cached, cache, store = counted
    key, now = new_key(), time.time()
    assert cached.insert(key, record(fields(a="1"), now=now))
    assert live(cached.load(key, now))  # the miss fills the cache
    reset(cache, store)
    assert dict(live(twin(mode, cached, "load")(key, now)).fields) == fields(a="1")
    assert calls(cache, store) == ({"load": 1}, {})


@MODES
def test_a_miss_is_one_read_of_each_and_the_fill(
    mode: str, counted: tuple[CachedStore, CountingStore, CountingStore]
) -> None:
    cached, cache, store = counted
    key, now = new_key(), time.time()
    assert twin(mode, cached, "insert")(key, record(fields(a="1"), now=now))
    assert calls(cache, store) == ({}, {"insert": 1})  # nothing written through
    reset(cache, store)
    assert dict(live(twin(mode, cached, "load")(key, now)).fields) == fields(a="1")
    assert calls(cache, store) == ({"load": 1, "insert": 1}, {"load": 1})


@MODES
def test_a_write_goes_to_the_store_then_seals_the_cached_copy(
    mode: str, counted: tuple[CachedStore, CountingStore, CountingStore]
) -> None:
    cached, cache, store = counted
    key, now = new_key(), time.time()
    assert cached.insert(key, record(fields(a="1"), now=now))
    assert live(cached.load(key, now))
    reset(cache, store)
    assert twin(mode, cached, "update")(key, change(now, set=fields(a="2")), now) is True
    assert calls(cache, store) == ({"delete": 1}, {"update": 1})
    reset(cache, store)  # sealed: the store answers, and nothing is filled
    assert dict(live(twin(mode, cached, "load")(key, now)).fields) == fields(a="2")
    assert calls(cache, store) == ({"load": 1}, {"load": 1})
    reset(cache, store)  # once the seal is over, a miss fills again
    later = now + cached.seal_for + 1
    assert dict(live(twin(mode, cached, "load")(key, later)).fields) == fields(a="2")
    assert calls(cache, store) == ({"load": 1, "insert": 1}, {"load": 1})


@MODES
def test_a_write_with_nothing_cached_leaves_a_seal(
    mode: str, counted: tuple[CachedStore, CountingStore, CountingStore]
) -> None:
    cached, cache, store = counted
    key, now = new_key(), time.time()
    assert cached.insert(key, record(fields(a="1"), now=now))
    assert twin(mode, cached, "delete")(key, now, now + 60) is True
    assert calls(cache, store) == ({"delete": 1, "insert": 1}, {"insert": 1, "delete": 1})
    assert read_entry(cache.load(key, now)) is Found.SEALED


# -- coherence between workers ----------------------------------------------------------------


@MODES
def test_every_worker_sees_a_save_at_once(mode: str, site: Site) -> None:
    a, b = site.worker(), site.worker()
    key, now = new_key(), time.time()
    assert a.insert(key, record({"role": ADMIN}, now=now))
    assert role(b.load(key, now)) == ADMIN  # b has it cached
    assert twin(mode, a, "update")(key, change(now, set={"role": USER}), now) is True
    for worker in (b, site.worker()):  # and one built afterwards
        assert role(twin(mode, worker, "load")(key, now)) == USER


@MODES
def test_every_worker_sees_a_logout_and_a_shorter_life_at_once(mode: str, site: Site) -> None:
    a, b = site.worker(), site.worker()
    shortened, ended, now = new_key(), new_key(), time.time()
    for key in (shortened, ended):
        assert a.insert(key, record({"role": ADMIN}, now=now))
        assert live(b.load(key, now))
    shorter = change(now, ttl=2, expiry_changed=True, expiry=Expiry("age", 2))
    assert twin(mode, a, "update")(shortened, shorter, now) is True
    assert twin(mode, a, "delete")(ended, now, now + 60) is True
    assert live(twin(mode, b, "load")(shortened, now)).expires_at == pytest.approx(now + 2)
    assert twin(mode, b, "load")(shortened, now + 3) is None
    assert isinstance(twin(mode, b, "load")(ended, now), Stale)


def test_a_fill_racing_a_save_never_caches_the_old_data(site: Site) -> None:
    hooked = Hooked(site.open_store())
    reader = CachedStore(cache=site.open_cache(), store=hooked)
    writer = site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    # The reader has read the store; the save lands, and seals, before the reader fills.
    hooked.after["load"] = lambda: writer.update(key, change(now, set={"role": USER}), now)
    assert role(reader.load(key, now)) == ADMIN
    assert read_entry(site.cache.load(key, now)) is Found.SEALED
    assert role(site.worker().load(key, now)) == USER


def test_a_fill_racing_a_logout_never_revives_the_session(site: Site) -> None:
    hooked = Hooked(site.open_store())
    reader = CachedStore(cache=site.open_cache(), store=hooked)
    writer = site.worker()
    key, now = new_key(), time.time()
    assert writer.insert(key, record({"role": ADMIN}, now=now))
    hooked.after["load"] = lambda: writer.delete(key, now, now + 60)
    assert live(reader.load(key, now))  # read before the logout
    assert isinstance(site.worker().load(key, now), Stale)
    assert isinstance(reader.load(key, now), Stale)


def test_a_fill_racing_a_revocation_is_sealed_by_its_second_pass(site: Site) -> None:
    hooked_store, hooked_cache = Hooked(site.open_store()), Hooked(site.open_cache())
    reader = CachedStore(cache=site.open_cache(), store=hooked_store)
    reader.fill_deadline = 1.0
    revoker = CachedStore(cache=hooked_cache, store=site.open_store())
    revoker.seal_for = 1.5  # longer than any reader's fill deadline
    key, now = new_key(), time.time()
    assert revoker.insert(key, record({"role": ADMIN}, now=now, user="u"))
    first_pass, ended = threading.Event(), []
    hooked_cache.after["revoke_user"] = first_pass.set
    revocation = threading.Thread(target=lambda: ended.append(revoker.revoke_user("u", now=now)))

    def revoke_between_read_and_fill() -> None:
        revocation.start()
        assert first_pass.wait(10)

    hooked_store.after["load"] = revoke_between_read_and_fill
    assert live(reader.load(key, now)).user == "u"  # read before the revocation...
    assert isinstance(read_entry(site.cache.load(key, now)), Record)  # ...filled after
    revocation.join()
    assert ended == [1]
    assert read_entry(site.cache.load(key, now)) is Found.SEALED
    assert isinstance(site.worker().load(key, now), Stale)


def test_a_slow_store_read_is_not_cached(site: Site) -> None:
    hooked = Hooked(site.open_store())
    reader = CachedStore(cache=site.open_cache(), store=hooked)
    reader.fill_deadline = 0.05
    key, now = new_key(), time.time()
    assert reader.insert(key, record({"role": ADMIN}, now=now))
    hooked.after["load"] = lambda: time.sleep(0.1)
    assert role(reader.load(key, now)) == ADMIN
    assert site.cache.load(key, now) is None  # the hook ran once: the next loads are quick
    assert role(load_until_cached(site, lambda: reader.load(key, now), key, now)) == ADMIN


def test_a_write_the_store_failed_still_seals_the_copy(site: Site) -> None:
    """A write that timed out may still land: its cached copy must not outlive it."""
    hooked = Hooked(site.open_store())
    worker = CachedStore(cache=site.open_cache(), store=hooked)
    key, now = new_key(), time.time()
    assert worker.insert(key, record({"role": ADMIN}, now=now))
    assert live(worker.load(key, now))

    def timed_out() -> None:
        raise SessionStoreError("the store timed out")

    hooked.after["update"] = timed_out
    with pytest.raises(SessionStoreError):
        worker.update(key, change(now, set={"role": USER}), now)
    assert read_entry(site.cache.load(key, now)) is Found.SEALED
    assert role(site.worker().load(key, now)) == USER


# -- lifetimes and what a copy holds ------------------------------------------------------------


def test_a_copy_lives_at_most_cache_ttl_and_gives_the_store_lifetime(site: Site) -> None:
    worker = site.worker(cache_ttl=10)
    key, now = new_key(), time.time()
    assert worker.insert(key, record(fields(a="1"), now=now))
    assert live(worker.load(key, now))
    copy = site.cache.load(key, now)
    assert isinstance(copy, Record)
    assert copy.expires_at == pytest.approx(now + 10)
    assert live(worker.load(key, now)).expires_at == pytest.approx(now + HOUR)  # a hit
    assert site.cache.load(key, now + 10) is None  # the cache forgets the copy
    assert live(worker.load(key, now + 10)).expires_at == pytest.approx(now + HOUR)


def test_a_hit_is_never_served_past_the_store_lifetime(site: Site) -> None:
    worker = site.worker(cache_ttl=600)
    key, now = new_key(), time.time()
    assert worker.insert(key, record(fields(a="1"), now=now, ttl=5))
    assert live(load_until_cached(site, lambda: worker.load(key, now), key, now))
    assert worker.load(key, now + 5) is None


@MODES
def test_a_copy_gives_back_the_whole_record_whatever_its_field_names(mode: str, site: Site) -> None:
    worker = site.worker()
    key, now = new_key(), time.time()
    data = {META: b"mine", "\x00": b"nul", "\x00\x00x": b"two", "": b"", "a": field("a", "1")}
    assert worker.insert(key, record(data, now=now, expiry=Expiry("age", 60), user="7"))
    missed = load_until_cached(site, lambda: twin(mode, worker, "load")(key, now), key, now)
    hit = twin(mode, worker, "load")(key, now)
    assert missed == hit == site.store.load(key, now)
    assert dict(live(hit).fields) == data


def test_a_session_too_large_for_the_cache_is_served_from_the_store(tmp_path: Path) -> None:
    cache = MemoryStore()
    cache.max_data_bytes = 100
    worker = CachedStore(cache=cache, store=FileStore(tmp_path), single_process=True)
    small, large, now = new_key(), new_key(), time.time()
    assert worker.insert(small, record(fields(a="1"), now=now))
    assert worker.insert(large, record(fields(a="x" * 100), now=now))
    for key in (small, large):
        assert live(worker.load(key, now))
    assert isinstance(read_entry(cache.load(small, now)), Record)
    assert cache.load(large, now) is None


def test_an_entry_the_cache_holds_for_someone_else_is_never_served_nor_replaced(
    site: Site,
) -> None:
    worker = site.worker()
    key, now = new_key(), time.time()
    assert worker.insert(key, record({"role": USER}, now=now))
    foreign = record({"role": ADMIN}, now=now)
    assert site.cache.insert(key, foreign)
    assert role(worker.load(key, now)) == USER
    assert site.cache.load(key, now) == foreign


# -- the per-user index ---------------------------------------------------------------------------


@MODES
def test_a_revocation_seals_the_copies_every_worker_cached(mode: str, site: Site) -> None:
    a, b = site.worker(), site.worker()
    kept, *ended = keys = [new_key() for _ in range(3)]
    now = time.time()
    for key in keys:
        assert a.insert(key, record({"role": USER}, now=now, user="u"))
        assert live(b.load(key, now))
    assert twin(mode, a, "revoke_user")("u", kept, now) == 2
    assert live(b.load(kept, now))
    for key in ended:
        assert not isinstance(read_entry(site.cache.load(key, now)), Record)
        assert isinstance(twin(mode, b, "load")(key, now), Stale)
    assert twin(mode, a, "revoke_session")("u", info_id(kept), now) is True
    assert isinstance(twin(mode, b, "load")(kept, now), Stale)
    assert twin(mode, b, "user_sessions")("u", now) == []


def test_a_cache_without_a_per_user_index_never_holds_a_copy_of_a_users_session(
    site: Site,
) -> None:
    class Unindexed(Hooked):
        supports_users = False

    worker = CachedStore(cache=Unindexed(site.open_cache()), store=site.open_store())
    signed_in, anonymous, now = new_key(), new_key(), time.time()
    assert worker.insert(signed_in, record(fields(a="1"), now=now, user="u"))
    assert worker.insert(anonymous, record(fields(a="1"), now=now))
    assert live(worker.load(signed_in, now))
    assert live(load_until_cached(site, lambda: worker.load(anonymous, now), anonymous, now))
    assert site.cache.load(signed_in, now) is None
    assert worker.revoke_user("u", now=now) == 1
    assert isinstance(worker.load(signed_in, now), Stale)


def test_clear_expired_purges_the_store_and_the_cache(tmp_path: Path) -> None:
    cache = MemoryStore()
    worker = CachedStore(cache=cache, store=FileStore(tmp_path), single_process=True)
    key, now = new_key(), time.time()
    assert worker.insert(key, record(fields(a="1"), now=now, ttl=5))
    assert live(worker.load(key, now))
    assert worker.update(key, change(now, ttl=5, set=fields(a="2")), now) is True
    assert worker.clear_expired(now + 100) == 1  # the store's record (its count)
    assert cache.clear_expired(now + 100) == 0  # the cache's seal went with it


# -- what may be a cache, and a store ---------------------------------------------------------


def test_only_a_memory_store_says_it_keeps_sessions_in_one_process() -> None:
    assert MemoryStore.shared is False
    for store in (FileStore, RedisStore, CachedStore):
        assert store.shared is True


@pytest.mark.parametrize("part", ["cache", "store"])
def test_a_per_process_part_is_refused_unless_declared(part: str, tmp_path: Path) -> None:
    shared = RedisStore(REDIS_URL, prefix=unique("swcache") + ":")
    parts: dict[str, SessionStore] = {"cache": shared, "store": FileStore(tmp_path)}
    parts[part] = MemoryStore()
    with pytest.raises(ValueError, match=r"single_process=True") as refused:
        CachedStore(cache=parts["cache"], store=parts["store"])
    assert f"{part} MemoryStore" in str(refused.value)
    assert CachedStore(cache=parts["cache"], store=parts["store"], single_process=True)


def test_one_process_may_run_several_workers_on_one_memory_cache(tmp_path: Path) -> None:
    cache = MemoryStore()
    a, b = (CachedStore(cache=cache, store=FileStore(tmp_path), single_process=True) for _ in "ab")
    key, now = new_key(), time.time()
    assert a.insert(key, record({"role": ADMIN}, now=now))
    assert live(b.load(key, now))
    assert a.delete(key, now, now + 60) is True
    assert isinstance(b.load(key, now), Stale)


@pytest.mark.parametrize("part", ["cache", "store"])
def test_a_cookie_store_is_refused(part: str, tmp_path: Path) -> None:
    parts: dict[str, SessionStore] = {"cache": MemoryStore(), "store": FileStore(tmp_path)}
    parts[part] = CookieStore()
    with pytest.raises(TypeError, match=f"CookieStore keeps no sessions on the server.*{part}"):
        CachedStore(cache=parts["cache"], store=parts["store"], single_process=True)


def test_other_mistakes_are_refused(tmp_path: Path) -> None:
    files = FileStore(tmp_path)

    class Unindexed(Hooked):
        supports_users = False

    with pytest.raises(ValueError, match="two different stores"):
        CachedStore(cache=files, store=files)
    with pytest.raises(TypeError, match="must be a SessionStore"):
        CachedStore(cache=object(), store=files)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="per-user index"):
        CachedStore(cache=FileStore(tmp_path / "c"), store=Unindexed(files))
    for wrong in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="cache_ttl"):
            CachedStore(cache=FileStore(tmp_path / "c"), store=files, cache_ttl=wrong)
    for mistyped in ("30", True, None):
        with pytest.raises(TypeError, match="cache_ttl"):
            CachedStore(cache=FileStore(tmp_path / "c"), store=files, cache_ttl=mistyped)  # type: ignore[arg-type]
