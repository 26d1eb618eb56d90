"""RedisStore's per-user index, and its Redis Cluster way of writing, run on one server.

Under a ``RedisCluster`` client the store writes one script per hash slot; ``PerSlotStore``
takes that path on the single server here, so the whole conformance kit and the races
the cluster design must survive run without a cluster. The interleavings are produced by
driving an operation's flow step by step and acting between two steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from sessionware._keys import info_id, new_key
from sessionware._records import Moved, Record, Stale
from sessionware.stores import RedisStore
from sessionware.stores._redis_flows import INDEX_GRACE, Flow, Flows
from sessionware.stores.base import SessionStore
from sessionware.testing.conformance import StoreConformance
from tests.servers import REDIS_URL, require_server
from tests.stores.factories import unique
from tests.stores.test_redis import HOUR, NOW, CommandLog, change, field, record

pytestmark = pytest.mark.redis


class PerSlotStore(RedisStore):
    """A RedisStore that writes as under Redis Cluster: one script per hash slot."""

    def _flows(self, client: object) -> Flows:
        return Flows(self._prefix, per_slot=True)


@pytest.fixture
def raw() -> Iterator[redis.Redis]:
    require_server("redis")
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def _made(kind: type[RedisStore]) -> Iterator[RedisStore]:
    require_server("redis")
    made = kind(REDIS_URL, prefix=unique("swtest") + ":")
    yield made
    made.delete_all()
    made.close()


@pytest.fixture
def store() -> Iterator[RedisStore]:
    yield from _made(RedisStore)


@pytest.fixture
def per_slot() -> Iterator[RedisStore]:
    yield from _made(PerSlotStore)


@pytest.fixture(params=["one server", "per slot"])
def either(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    yield from _made(RedisStore if request.param == "one server" else PerSlotStore)


class TestPerSlotOnOneServer(StoreConformance):
    """The whole contract holds when every script stays inside one hash slot."""

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        yield from _made(PerSlotStore)


def index(store: RedisStore, user: str) -> bytes:
    return store.prefix.encode() + b"u:{" + user.encode() + b"}"


def members(raw: redis.Redis, store: RedisStore, user: str) -> list[str]:
    found: list[bytes] = raw.zrange(index(store, user), 0, -1)  # type: ignore[assignment]
    return [member.decode() for member in found]


def interleave(store: RedisStore, flow: Flow[Any], steps: int, between: Callable[[], Any]) -> Any:
    """Run ``flow`` on the store's sync client, calling ``between`` after ``steps`` steps."""
    io = store._sync
    reply, done = None, 0
    try:
        while True:
            step = flow.send(reply)
            if done == steps:
                between()
            reply = io._perform(step)
            done += 1
    except StopIteration as finished:
        return finished.value


# -- one server: the index is exact and looks after itself -----------------------------------


def test_the_index_follows_every_write_exactly(store: RedisStore, raw: redis.Redis) -> None:
    key, rotated, renewed = new_key(), new_key(), new_key()
    assert store.insert(key, record(user="u"))
    assert members(raw, store, "u") == [key]
    assert store.update(key, change(user_changed=True, user="v"), NOW) is True
    assert (members(raw, store, "u"), members(raw, store, "v")) == ([], [key])
    assert store.rotate(key, rotated, record(user="v"), NOW, NOW + 60) is True
    assert members(raw, store, "v") == [rotated]
    assert store.renew(rotated, renewed, NOW, NOW + 30) is True
    assert members(raw, store, "v") == [renewed]
    assert store.delete(renewed, NOW, NOW + 60) is True
    assert raw.exists(index(store, "v")) == 0


def test_an_index_outlives_its_sessions_and_no_longer(store: RedisStore, raw: redis.Redis) -> None:
    def expires(name: bytes | str) -> int:
        return int(raw.pexpiretime(name if isinstance(name, str) else name.decode()))

    key, short = new_key(), new_key()
    assert store.insert(key, record(user="u", expires_in=HOUR))
    assert expires(index(store, "u")) == expires(store.prefix + key)
    assert store.update(key, change(expires_at=NOW + 2 * HOUR), NOW) is True
    assert expires(index(store, "u")) == expires(store.prefix + key)
    assert store.insert(short, record(user="u", expires_in=60))
    assert expires(index(store, "u")) == expires(store.prefix + key)


def test_an_index_sheds_dead_entries_as_sessions_join(store: RedisStore, raw: redis.Redis) -> None:
    dead = [new_key() for _ in range(3)]  # sessions Redis expired: their hashes are gone
    raw.zadd(index(store, "u"), {key: score for score, key in enumerate(dead, 1)})
    raw.pexpireat(index(store, "u"), int((NOW + HOUR) * 1000))
    first, second = new_key(), new_key()
    assert store.insert(first, record(user="u"))
    assert members(raw, store, "u") == [dead[2], first]
    assert store.insert(second, record(user="u"))
    assert members(raw, store, "u") == [first, second]


@pytest.mark.parametrize("user", ["a}b{c", "ключ 🔑", "", "u:{x}"])
def test_any_user_id_has_an_index_of_its_own(
    either: RedisStore, raw: redis.Redis, user: str
) -> None:
    mine, theirs = new_key(), new_key()
    assert either.insert(mine, record(user=user))
    assert either.insert(theirs, record(user=user + "x"))
    assert raw.zrange(index(either, user), 0, -1) == [mine.encode()]
    assert [info.id for info in either.user_sessions(user, NOW)] == [info_id(mine)]
    assert either.revoke_session(user, info_id(mine), NOW) is True
    assert either.revoke_user(user + "x", None, NOW) == 1


def test_revoke_user_starts_over_when_a_login_joins_meanwhile(store: RedisStore) -> None:
    early, late = new_key(), new_key()
    assert store.insert(early, record(user="u"))

    def login() -> None:
        assert store.insert(late, record(user="u"))

    ended = interleave(store, store._sync.flows.revoke_user("u", None, NOW, NOW + 60), 1, login)
    assert ended == 2
    assert isinstance(store.load(early, NOW), Stale)
    assert isinstance(store.load(late, NOW), Stale)


# -- both ways: dead entries are pruned once they are old enough ------------------------------


@pytest.mark.parametrize("how", ["user_sessions", "clear_expired"])
def test_dead_entries_are_pruned_after_the_grace(
    either: RedisStore, raw: redis.Redis, how: str
) -> None:
    live, old_dead, new_dead = new_key(), new_key(), new_key()
    assert either.insert(live, record(user="u"))
    now = time.time()
    raw.zadd(index(either, "u"), {old_dead: now - INDEX_GRACE - 60, new_dead: now})
    if how == "user_sessions":
        assert [info.id for info in either.user_sessions("u", NOW)] == [info_id(live)]
    else:
        assert either.clear_expired(NOW) == 0
    assert sorted(members(raw, either, "u")) == sorted([live, new_dead])


def test_clear_expired_prunes_every_index(either: RedisStore, raw: redis.Redis) -> None:
    users = [f"user{n}" for n in range(3)]
    for user in users:
        raw.zadd(index(either, user), {new_key(): time.time() - INDEX_GRACE - 60})
    assert either.clear_expired(NOW) == 0
    assert [raw.exists(index(either, user)) for user in users] == [0, 0, 0]


# -- per slot: what Redis Cluster needs, and the races it brings -------------------------------


def _script_slots(made: RedisStore) -> list[set[int]]:
    """The hash slots of the keys each script touched during a run of every operation."""
    key, rotated, renewed, other = (new_key() for _ in range(4))
    with CommandLog(made.prefix) as log:
        assert made.insert(key, record({"a": field("a", 1)}, user="u"))
        assert made.update(key, change(user_changed=True, user="v"), NOW) is True
        assert made.rotate(key, rotated, record(user="v"), NOW, NOW + 60) is True
        assert made.renew(rotated, renewed, NOW, NOW + 30) is True
        assert made.insert(other, record(user="v", expires_in=5))
        assert len(made.user_sessions("v", NOW)) == 2
        assert made.clear_expired(NOW + 10) == 1
        assert made.revoke_user("v", None, NOW) == 1
    slots = []
    for declared, commands in log.scripts:
        touched = [words[1] for words in commands if words[0].upper() != "TIME"]
        slots.append({key_slot(name.encode()) for name in declared + touched})
    return slots


def test_per_slot_every_script_stays_inside_one_hash_slot(per_slot: RedisStore) -> None:
    slots = _script_slots(per_slot)
    assert len(slots) > 10
    assert all(len(script) == 1 for script in slots)


def test_on_one_server_scripts_span_slots(store: RedisStore) -> None:
    assert any(len(script) > 1 for script in _script_slots(store))  # the check above can fail


def test_per_slot_a_session_of_another_user_listed_under_one_is_left_alone(
    per_slot: RedisStore, raw: redis.Redis
) -> None:
    key = new_key()
    assert per_slot.insert(key, record(user="u"))
    assert per_slot.update(key, change(user_changed=True, user="v"), NOW) is True
    assert members(raw, per_slot, "u") == [key]  # a stale entry, tolerated
    assert per_slot.user_sessions("u", NOW) == []
    assert per_slot.revoke_user("u", None, NOW) == 0
    assert isinstance(per_slot.load(key, NOW), Record)
    assert [info.id for info in per_slot.user_sessions("v", NOW)] == [info_id(key)]


def test_per_slot_a_revocation_stops_a_rotation_half_done(per_slot: RedisStore) -> None:
    old, new = new_key(), new_key()
    assert per_slot.insert(old, record(user="u"))
    flow = per_slot._sync.flows.rotate(old, new, record(user="u"), NOW, NOW + 60)
    # Steps: list the new key, write it, end the old one; revoke before the last.
    result = interleave(per_slot, flow, 2, lambda: per_slot.revoke_user("u", None, NOW))
    assert result is False
    assert isinstance(per_slot.load(old, NOW), Stale)
    assert isinstance(per_slot.load(new, NOW), Stale)
    assert per_slot.user_sessions("u", NOW) == []


def test_per_slot_a_revocation_stops_a_renewal_half_done(per_slot: RedisStore) -> None:
    old, new = new_key(), new_key()
    assert per_slot.insert(old, record(user="u"))
    flow = per_slot._sync.flows.renew(old, new, NOW, NOW + 30)
    # Steps: claim the new key, point the old key at it, list it, fill it; revoke after
    # the pointer: the revocation follows it and leaves a stale marker on the claim.
    result = interleave(per_slot, flow, 2, lambda: per_slot.revoke_user("u", None, NOW))
    assert result is False
    assert per_slot.load(old, NOW) == Moved(new, NOW + 30)
    assert isinstance(per_slot.load(new, NOW), Stale)
    assert per_slot.user_sessions("u", NOW) == []


def test_per_slot_a_revocation_before_the_pointer_frees_the_claim(
    per_slot: RedisStore, raw: redis.Redis
) -> None:
    old, new = new_key(), new_key()
    assert per_slot.insert(old, record(user="u"))
    flow = per_slot._sync.flows.renew(old, new, NOW, NOW + 30)
    result = interleave(per_slot, flow, 1, lambda: per_slot.revoke_user("u", None, NOW))
    assert result is False
    assert isinstance(per_slot.load(old, NOW), Stale)
    assert raw.exists(per_slot.prefix + new) == 0


def test_per_slot_a_claimed_key_loads_as_nothing_and_takes_no_write(
    per_slot: RedisStore, raw: redis.Redis
) -> None:
    old, new = new_key(), new_key()
    assert per_slot.insert(old, record({"a": field("a", 1)}, user="u"))
    flow = per_slot._sync.flows.renew(old, new, NOW, NOW + 30)

    def meanwhile() -> None:
        assert raw.hget(per_slot.prefix + new, "m") == b"claim"
        assert per_slot.load(new, NOW) is None
        assert per_slot.insert(new, record()) is False
        assert per_slot.update(new, change(set={"x": b"1"}), NOW) is False
        assert per_slot.delete(new, NOW, NOW + 60) is False
        assert per_slot.renew(new, new_key(), NOW, NOW + 30) is False

    assert interleave(per_slot, flow, 1, meanwhile) is True
    loaded = per_slot.load(new, NOW)
    assert isinstance(loaded, Record)
    assert dict(loaded.fields) == {"a": field("a", 1)}
    assert per_slot.load(old, NOW) == Moved(new, NOW + 30)


def test_per_slot_a_revocation_stops_a_login_half_done(per_slot: RedisStore) -> None:
    key = new_key()
    flow = per_slot._sync.flows.insert(key, record(user="u"))
    result = interleave(per_slot, flow, 1, lambda: per_slot.revoke_user("u", None, NOW))
    assert result is False
    assert isinstance(per_slot.load(key, NOW), Stale)


def test_a_cluster_client_selects_the_per_slot_flows() -> None:
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
    from redis.cluster import RedisCluster

    store = RedisStore(prefix="swtest:")
    try:
        sync_client: Any = RedisCluster.__new__(RedisCluster)  # never connected
        async_client: Any = AsyncRedisCluster.__new__(AsyncRedisCluster)
        assert store._flows(sync_client).per_slot
        assert store._flows(async_client).per_slot
        assert not store._sync.flows.per_slot
    finally:
        store.close()


def test_per_slot_a_rotation_or_renewal_of_an_ended_key_leaves_no_new_key(
    per_slot: RedisStore, raw: redis.Redis
) -> None:
    ended, renewed, rotated_to, renewed_to = new_key(), new_key(), new_key(), new_key()
    assert per_slot.insert(ended, record(user="u"))
    assert per_slot.delete(ended, NOW, NOW + 60) is True
    assert per_slot.rotate(ended, rotated_to, record(user="u"), NOW, NOW + 60) is False
    assert per_slot.renew(ended, renewed_to, NOW, NOW + 30) is False
    assert per_slot.insert(renewed, record(user="u"))
    winner = new_key()
    assert per_slot.renew(renewed, winner, NOW, NOW + 30) is True
    late = new_key()
    assert per_slot.renew(renewed, late, NOW, NOW + 30) == Moved(winner, NOW + 30)
    names = [per_slot.prefix + key for key in (rotated_to, renewed_to, late)]
    assert [raw.exists(name) for name in names] == [0, 0, 0]
