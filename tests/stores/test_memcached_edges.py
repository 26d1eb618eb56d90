"""MemcachedStore at its edges, on real servers: items that are not sessions, user indexes
that are unreadable, full or stale, writes that lose their ``cas`` to a concurrent request,
writes that give up, and the clients and servers that cannot list their keys.

A concurrent request is played by ``Meddler``: a real pymemcache client that lets the test
act on the server just before a chosen command, as another request would in between.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import emcache
import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient

from sessionware._errors import SessionStoreError
from sessionware._keys import info_id, new_key
from sessionware._records import Moved, Stale
from sessionware.stores import MemcachedStore
from sessionware.stores._memcached_flows import Flows
from sessionware.stores._memcached_io import AsyncConnection, AsyncIO, SyncIO
from sessionware.stores._memcached_layout import (
    DEFAULT_MAX_ITEM_BYTES,
    Index,
    decode_index,
    encode_index,
    encode_record,
    index_name,
    pack_record,
    session_name,
)
from sessionware.stores._memcached_steps import Delete, Flow
from sessionware.testing.conformance import change, field, live, record
from tests.servers import MEMCACHED_URL, require_server
from tests.stores.factories import unique
from tests.stores.test_memcached import call, private_memcached

pytestmark = [pytest.mark.memcached, pytest.mark.anyio]

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
SERVER = ("127.0.0.1", 11211)
#: Older than the index grace (300 s): such an entry that holds nothing may be pruned.
LONG_AGO = 1000.0


class Meddler(Client):  # type: ignore[misc]
    """A real client that runs the test's action just before a chosen command on a chosen
    item (a concurrent request, in between), and counts the commands it sends."""

    def __init__(self) -> None:
        super().__init__(SERVER, timeout=5, default_noreply=False)
        self.actions: dict[tuple[str, bytes], Callable[[], object]] = {}
        self.sent: Counter[tuple[str, bytes]] = Counter()

    def before(self, command: str, name: bytes, action: Callable[[], object]) -> None:
        self.actions[(command, name)] = action

    def once(self, command: str, name: bytes, action: Callable[[], object]) -> None:
        def first_time() -> None:
            del self.actions[(command, name)]
            action()

        self.before(command, name, first_time)

    def _meddle(self, command: str, name: bytes) -> None:
        self.sent[(command, name)] += 1
        action = self.actions.get((command, name))
        if action is not None:
            action()

    def gets(self, key: bytes, *args: Any, **kwargs: Any) -> Any:
        self._meddle("gets", key)
        return super().gets(key, *args, **kwargs)

    def add(self, key: bytes, *args: Any, **kwargs: Any) -> Any:
        self._meddle("add", key)
        return super().add(key, *args, **kwargs)

    def cas(self, key: bytes, *args: Any, **kwargs: Any) -> Any:
        self._meddle("cas", key)
        return super().cas(key, *args, **kwargs)


@pytest.fixture
def raw() -> Iterator[Client]:
    """A plain client on the shared server, to look and to act behind the store's back."""
    require_server("memcached")
    client = Client(SERVER, timeout=5, default_noreply=False)
    yield client
    client.close()


@pytest.fixture
def meddler(raw: Client) -> Iterator[Meddler]:
    client = Meddler()
    yield client
    client.close()


@pytest.fixture
def store(meddler: Meddler) -> Iterator[MemcachedStore]:
    """A store of its own prefix on the shared server, through the meddling client."""
    made = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":", client=meddler)
    yield made
    meddler.actions.clear()
    made.delete_all()
    made.close()


@pytest.fixture
def other(store: MemcachedStore) -> Iterator[MemcachedStore]:
    """A second store on the same prefix: another process's requests."""
    made = MemcachedStore(MEMCACHED_URL, prefix=store.prefix)
    yield made
    made.close()


def name_of(store: MemcachedStore, key: str) -> bytes:
    return session_name(store.prefix.encode(), key)


def index_of(store: MemcachedStore, user: str) -> bytes:
    return index_name(store.prefix.encode(), user)


def bump(raw: Client, name: bytes) -> Callable[[], None]:
    """Write the item again as it is: its CAS token changes, as after a concurrent save."""

    def action() -> None:
        assert raw.set(name, raw.get(name), noreply=False)

    return action


def read_index(raw: Client, store: MemcachedStore, user: str) -> Index | None:
    return decode_index(raw.get(index_of(store, user)))


def write_index(raw: Client, store: MemcachedStore, index: Index) -> None:
    name = index_of(store, index.user)
    assert raw.set(name, encode_index(index, name, DEFAULT_MAX_ITEM_BYTES), noreply=False)


def with_ghost(raw: Client, store: MemcachedStore, user: str, ghost: str, added: float) -> None:
    """List ``ghost`` (a key that holds nothing) in the user's index, as added at ``added``."""
    index = read_index(raw, store, user)
    assert index is not None
    write_index(raw, store, Index(user, index.generation, {**index.keys, ghost: added}))


def flows_of(store: MemcachedStore, attempts: int) -> Flows:
    return Flows(store.prefix.encode(), DEFAULT_MAX_ITEM_BYTES, attempts)


# -- items that are not sessions -------------------------------------------------------------


def test_a_key_memcached_cannot_name_is_kept_under_a_hash(
    store: MemcachedStore, raw: Client
) -> None:
    key, now = "not a plain key/é", time.time()
    assert store.insert(key, record({"a": field("a", "1")}, now=now))
    assert dict(live(store.load(key, now)).fields) == {"a": field("a", "1")}
    assert name_of(store, key).startswith(store.prefix.encode() + b"h:")
    assert raw.get(name_of(store, key)) is not None


NOT_SESSIONS = {
    "no header end": b"swm1r",
    "header not an object": b"swm1r[1,2]\n{}",
    "header not json": b"swm1r{nope\n{}",
    "user not a string": b'swm1r{"c":1,"e":9e9,"u":5}\n{}',
    "marker time not a number": b'swm1s{"until":"later"}\n',
    "pointer without a key": b'swm1m{"until":9e9}\n',
    "unknown kind": b'swm1x{"until":9e9}\n',
}


@pytest.mark.parametrize("value", list(NOT_SESSIONS.values()), ids=list(NOT_SESSIONS))
def test_an_item_that_is_not_a_session_reads_as_absent_and_is_not_written(
    store: MemcachedStore, raw: Client, value: bytes
) -> None:
    key, now = new_key(), time.time()
    assert raw.set(name_of(store, key), value, expire=60, noreply=False)
    assert store.load(key, now) is None
    assert store.update(key, change(now, set={"b": field("b", "2")}), now) is False
    assert store.delete(key, now, now + 60) is False
    assert raw.get(name_of(store, key)) == value


def test_a_record_whose_fields_do_not_unpack_is_not_updated(
    store: MemcachedStore, raw: Client
) -> None:
    key, now = new_key(), time.time()
    broken = record(now=now)._replace(fields={})
    value = encode_record(broken, None, b"{not a packed session")
    assert raw.set(name_of(store, key), value, expire=60, noreply=False)
    assert store.update(key, change(now, set={"b": field("b", "2")}), now) is False
    assert raw.get(name_of(store, key)) == value


# -- the per-user index ------------------------------------------------------------------------

NOT_INDEXES = {
    "not json": b"{nope",
    "not an object": b"[1, 2]",
    "generation not a string": b'{"u": "u", "g": 1, "k": {}}',
    "entry time not a number": b'{"u": "u", "g": "g1", "k": {"k1": "then"}}',
    "another user's": b'{"u": "someone else", "g": "g1", "k": {}}',
}


@pytest.mark.parametrize("value", list(NOT_INDEXES.values()), ids=list(NOT_INDEXES))
def test_an_unreadable_index_lists_nothing_and_the_next_login_replaces_it(
    store: MemcachedStore, raw: Client, value: bytes
) -> None:
    now = time.time()
    assert raw.set(index_of(store, "u"), value, noreply=False)
    assert store.user_sessions("u", now) == []
    assert store.revoke_user("u", now=now) == 0
    key = new_key()
    assert store.insert(key, record(now=now, user="u"))
    index = read_index(raw, store, "u")
    assert index is not None
    assert index.user == "u"
    assert list(index.keys) == [key]
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]


def test_a_full_index_refuses_the_next_login_and_writes_nothing(raw: Client) -> None:
    store = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":", max_item_bytes=4096)
    now, keys = time.time(), []
    try:
        with pytest.raises(SessionStoreError, match="index is full"):  # noqa: PT012
            for _ in range(200):
                keys.append(new_key())
                store.insert(keys[-1], record(now=now, user="u"))
        refused, written = keys[-1], keys[:-1]
        assert len(written) > 10
        assert raw.get(name_of(store, refused)) is None
        assert len(store.user_sessions("u", now)) == len(written)
    finally:
        store.delete_all()
        store.close()


def test_a_long_index_drops_its_long_dead_entries_when_a_key_is_added(
    store: MemcachedStore, raw: Client
) -> None:
    now, kept = time.time(), new_key()
    assert store.insert(kept, record(now=now, user="u"))
    index = read_index(raw, store, "u")
    assert index is not None
    ghosts = {new_key(): now - LONG_AGO for _ in range(70)}
    write_index(raw, store, Index("u", index.generation, {**index.keys, **ghosts}))
    added = new_key()
    assert store.insert(added, record(now=now, user="u"))
    after = read_index(raw, store, "u")
    assert after is not None
    assert set(after.keys) == {kept, added}
    assert after.generation == index.generation  # the sessions stay live


def test_a_listing_drops_an_entry_that_held_nothing_for_long(
    store: MemcachedStore, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]
    after = read_index(raw, store, "u")
    assert after is not None
    assert set(after.keys) == {key}


def test_a_revocation_drops_an_entry_that_held_nothing_for_long(
    store: MemcachedStore, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    assert store.revoke_user("u", now=now) == 1
    assert isinstance(store.load(key, now), Stale)
    assert store.load(ghost, now) is None  # no marker for a key that never came
    after = read_index(raw, store, "u")
    assert after is not None
    assert after.keys == {}


def test_clear_expired_prunes_the_indexes_and_leaves_unreadable_ones(
    store: MemcachedStore, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    garbage = store.prefix.encode() + b"user:garbage"
    assert raw.set(garbage, b"not an index", expire=60, noreply=False)
    assert store.count_expired(now) == 0  # an index item is not a session
    assert store.clear_expired(now) == 0
    after = read_index(raw, store, "u")
    assert after is not None
    assert set(after.keys) == {key}
    assert raw.get(garbage) == b"not an index"


def test_an_index_gone_before_its_pruning_is_not_written_again(
    store: MemcachedStore, meddler: Meddler, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    meddler.once("gets", index_of(store, "u"), lambda: raw.delete(index_of(store, "u")))
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]
    assert raw.get(index_of(store, "u")) is None


def test_an_entry_added_again_before_its_pruning_is_kept(
    store: MemcachedStore, meddler: Meddler, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    again = time.time()  # a login of that key listed it again meanwhile
    meddler.once("gets", index_of(store, "u"), lambda: with_ghost(raw, store, "u", ghost, again))
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]
    after = read_index(raw, store, "u")
    assert after is not None
    assert after.keys[ghost] == again
    assert meddler.sent[("cas", index_of(store, "u"))] == 0


def test_pruning_that_keeps_losing_its_cas_gives_up_quietly(
    store: MemcachedStore, meddler: Meddler, raw: Client
) -> None:
    now, key, ghost = time.time(), new_key(), new_key()
    assert store.insert(key, record(now=now, user="u"))
    with_ghost(raw, store, "u", ghost, now - LONG_AGO)
    meddler.before("cas", index_of(store, "u"), bump(raw, index_of(store, "u")))
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]
    assert meddler.sent[("cas", index_of(store, "u"))] == 3  # best effort: a later one retries
    after = read_index(raw, store, "u")
    assert after is not None
    assert ghost in after.keys


def test_a_login_that_lands_during_a_revocation_is_ended(
    store: MemcachedStore, meddler: Meddler, other: MemcachedStore, raw: Client
) -> None:
    now, key = time.time(), new_key()
    # A login listed its key and is still on its way to write the record.
    SyncIO(raw, DEFAULT_MAX_ITEM_BYTES).run(flows_of(store, 3).index_add("u", key))
    login = record({"a": field("a", "1")}, now=now, user="u")
    meddler.once("add", name_of(store, key), lambda: other.insert(key, login))
    assert store.revoke_user("u", now=now) == 1
    assert isinstance(store.load(key, now), Stale)


# -- writes that lose their cas to a concurrent request ----------------------------------------


def test_an_update_that_lost_its_cas_lists_its_new_user_once(
    store: MemcachedStore, meddler: Meddler, raw: Client
) -> None:
    now, key = time.time(), new_key()
    assert store.insert(key, record({"a": field("a", "1")}, now=now))
    meddler.once("cas", name_of(store, key), bump(raw, name_of(store, key)))
    login = change(now, user_changed=True, user="u", set={"b": field("b", "2")})
    assert store.update(key, login, now) is True
    assert meddler.sent[("cas", name_of(store, key))] == 2
    index = index_of(store, "u")
    assert meddler.sent[("add", index)] + meddler.sent[("cas", index)] == 1
    assert live(store.load(key, now)).user == "u"
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]


@pytest.mark.parametrize("meanwhile", ["written", "gone"])
def test_an_insert_over_a_dead_item_that_changed_meanwhile_tries_again(
    store: MemcachedStore, meddler: Meddler, raw: Client, meanwhile: str
) -> None:
    now, key = time.time(), new_key()
    name = name_of(store, key)
    dead = record({"old": field("old", "1")}, now=now - 100, ttl=10)
    assert raw.set(name, encode_record(dead, None, pack_record(dead)), 60)
    if meanwhile == "written":  # between the insert's read and its cas
        meddler.once("cas", name, bump(raw, name))
    else:  # between its refused add and its read
        meddler.once("gets", name, lambda: raw.delete(name))
    assert store.insert(key, record({"a": field("a", "1")}, now=now)) is True
    assert meddler.sent[("add", name)] == 2
    assert dict(live(store.load(key, now)).fields) == {"a": field("a", "1")}


def test_a_rotation_that_lost_its_cas_to_a_save_tries_again(
    store: MemcachedStore, meddler: Meddler, raw: Client
) -> None:
    now, old, new = time.time(), new_key(), new_key()
    assert store.insert(old, record({"a": field("a", "1")}, now=now))
    meddler.once("cas", name_of(store, old), bump(raw, name_of(store, old)))
    rotated = record({"b": field("b", "2")}, now=now)
    assert store.rotate(old, new, rotated, now, now + 60) is True
    assert meddler.sent[("cas", name_of(store, old))] == 2
    assert isinstance(store.load(old, now), Stale)
    assert dict(live(store.load(new, now)).fields) == {"b": field("b", "2")}


def test_a_renewal_that_races_a_save_carries_the_saved_data(
    store: MemcachedStore, meddler: Meddler, other: MemcachedStore
) -> None:
    now, old, new = time.time(), new_key(), new_key()
    assert store.insert(old, record({"a": field("a", "1")}, now=now, user="u"))
    save = change(now, set={"b": field("b", "2")})
    meddler.once("cas", name_of(store, old), lambda: other.update(old, save, now))
    assert store.renew(old, new, now, now + 30) is True
    assert store.load(old, now) == Moved(new, now + 30)
    renewed = live(store.load(new, now))
    assert dict(renewed.fields) == {"a": field("a", "1"), "b": field("b", "2")}
    assert [info.id for info in store.user_sessions("u", now)] == [info_id(new)]


def test_a_renewal_whose_new_key_was_revoked_meanwhile_fails(
    store: MemcachedStore, meddler: Meddler, other: MemcachedStore
) -> None:
    now, old, new = time.time(), new_key(), new_key()
    assert store.insert(old, record({"a": field("a", "1")}, now=now, user="u"))

    def save_and_revoke() -> None:
        assert other.update(old, change(now, set={"b": field("b", "2")}), now) is True
        assert other.revoke_session("u", info_id(new), now=now) is True

    meddler.once("cas", name_of(store, old), save_and_revoke)
    assert store.renew(old, new, now, now + 30) is False
    assert isinstance(store.load(new, now), Stale)
    assert not isinstance(store.load(old, now), Moved)


def test_a_renewal_whose_new_item_vanished_writes_it_again(
    store: MemcachedStore, meddler: Meddler, other: MemcachedStore, raw: Client
) -> None:
    now, old, new = time.time(), new_key(), new_key()
    assert store.insert(old, record({"a": field("a", "1")}, now=now))

    def save_and_evict() -> None:
        assert other.update(old, change(now, set={"b": field("b", "2")}), now) is True
        assert raw.delete(name_of(store, new), noreply=False)

    meddler.once("cas", name_of(store, old), save_and_evict)
    assert store.renew(old, new, now, now + 30) is True
    assert meddler.sent[("add", name_of(store, new))] == 2
    assert dict(live(store.load(new, now)).fields) == {"a": field("a", "1"), "b": field("b", "2")}


# -- writes that give up ------------------------------------------------------------------------

GIVE_UPS = ["delete", "insert", "rotate", "renew", "renew-rewrite", "index", "revoke"]


@pytest.mark.parametrize("operation", GIVE_UPS)
def test_a_write_whose_items_keep_changing_gives_up_and_ends_nothing(
    store: MemcachedStore, meddler: Meddler, raw: Client, operation: str
) -> None:
    now, key, new = time.time(), new_key(), new_key()
    first = record({"a": field("a", "1")}, now=now, user="u")
    assert store.insert(key, first)
    flows, io = flows_of(store, 3), SyncIO(meddler, DEFAULT_MAX_ITEM_BYTES)
    keeps_changing = {
        "delete": [key],
        "insert": [new],
        "rotate": [key],
        "renew": [key],
        "renew-rewrite": [key, new],
        "index": [],
        "revoke": [key],
    }[operation]
    for changing in keeps_changing:
        meddler.before("cas", name_of(store, changing), bump(raw, name_of(store, changing)))
    flow: Flow[Any]
    if operation == "delete":
        flow = flows.delete(key, now, now + 60)
    elif operation == "insert":  # over a dead item
        dead = record(now=now - 100, ttl=10)
        assert raw.set(name_of(store, new), encode_record(dead, None, pack_record(dead)), 60)
        flow = flows.insert(new, record(now=now))
    elif operation == "rotate":
        flow = flows.rotate(key, new, record(now=now, user="u"), now, now + 60)
    elif operation in ("renew", "renew-rewrite"):
        flow = flows.renew(key, new, now, now + 60)
    elif operation == "index":
        meddler.before("cas", index_of(store, "u"), bump(raw, index_of(store, "u")))
        flow = flows.insert(new, record(now=now, user="u"))
    else:
        flow = flows.revoke("u", lambda _: True, now, now + 60)
    failed = "renew" if operation == "renew-rewrite" else operation
    with pytest.raises(SessionStoreError, match=f"failed in {failed}: .* under 3 attempts"):
        io.run(flow)
    meddler.actions.clear()
    assert live(store.load(key, now)).fields == first.fields
    if operation in ("rotate", "renew", "renew-rewrite", "index"):
        assert store.load(new, now) is None  # nobody was given it: nothing is left there
        assert [info.id for info in store.user_sessions("u", now)] == [info_id(key)]


# -- clients and servers -----------------------------------------------------------------------


@pytest.mark.parametrize("size", ["1048576", 1.5, True])
def test_an_item_limit_that_is_not_an_int_is_refused(size: Any) -> None:
    with pytest.raises(TypeError, match="max_item_bytes"):
        MemcachedStore(max_item_bytes=size)


async def test_a_given_async_client_is_used_and_left_open(raw: Client) -> None:
    given = await emcache.create_client([emcache.MemcachedHostAddress(*SERVER)], timeout=5)
    store = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":", async_client=given)
    try:
        key, now = new_key(), time.time()
        assert await store.ainsert(key, record({"a": field("a", "1")}, now=now))
        assert dict(live(await store.aload(key, now)).fields) == {"a": field("a", "1")}
        assert raw.get(name_of(store, key)) is not None
        await store.aclose()
        store.close()
        item = await given.get(name_of(store, key))  # still open, still the caller's
        assert item is not None
    finally:
        store.delete_all()
        store.close()
        await given.close()


async def test_a_given_sync_client_alone_serves_the_async_twins_and_is_left_open(
    raw: Client,
) -> None:
    given = Client(SERVER, timeout=5, default_noreply=False)
    store = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":", client=given)
    try:
        key, now = new_key(), time.time()
        assert await store.ainsert(key, record({"a": field("a", "1")}, now=now))
        assert dict(live(await store.aload(key, now)).fields) == {"a": field("a", "1")}
        assert given.sock is not None  # the thread used the given client
        store.close()
        await store.aclose()
        assert given.sock is not None
    finally:
        store.delete_all()
        given.close()


def test_a_hash_client_serves_sessions_but_finds_nothing_to_sweep(raw: Client) -> None:
    prefix = unique("swtest") + ":"
    several = HashClient([SERVER], timeout=5, default_noreply=False)
    store = MemcachedStore(MEMCACHED_URL, prefix=prefix, client=several)
    single = MemcachedStore(MEMCACHED_URL, prefix=prefix)
    try:
        key, now = new_key(), time.time()
        assert store.insert(key, record(now=now, ttl=60))
        heard: list[int] = []
        assert store.count_expired(now + 120) == 0
        assert store.clear_expired(now + 120) == 0
        assert store.clear_expired(now + 120, progress=heard.append) == 0
        assert heard == [0]
        assert store.delete_all() == 0
        assert raw.get(name_of(store, key)) is not None  # the dead item is still there
        assert single.count_expired(now + 120) == 1  # as a one-server client sees
        findings = dict(store.check())
        assert "Memcached" in findings["server"]
        assert "127.0.0.1:11211" in findings["server"]
    finally:
        single.delete_all()
        single.close()
        several.close()


def test_a_server_that_cannot_list_its_keys_sweeps_nothing() -> None:
    with private_memcached("-o", "no_lru_crawler") as server:
        store = MemcachedStore(server.url, prefix="nocrawl:")
        try:
            key, now = new_key(), time.time()
            assert store.insert(key, record(now=now, ttl=60))
            heard: list[int] = []
            assert store.clear_expired(now + 120, progress=heard.append) == 0
            assert heard == [0]
            assert store.count_expired(now + 120) == 0
            assert store.load(key, now) is not None
        finally:
            store.close()


@pytest.fixture
def hangs_up() -> Iterator[int]:
    """A port whose server closes every connection at once."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    done.set()
    thread.join(timeout=5)
    listener.close()


@pytest.mark.parametrize("operation", ["clear_expired", "count_expired", "delete_all"])
def test_a_server_that_hangs_up_during_the_key_listing_is_a_store_error(
    hangs_up: int, operation: str
) -> None:
    store = MemcachedStore(f"memcached://127.0.0.1:{hangs_up}", timeout=2)
    try:
        with pytest.raises(SessionStoreError, match=f"failed in {operation}"):
            getattr(store, operation)()
    finally:
        store.close()


def _delete(name: bytes) -> Flow[bool]:
    found: bool = yield Delete(name)
    return found


@MODES
async def test_both_drivers_say_whether_a_delete_found_an_item(raw: Client, mode: str) -> None:
    name = unique("swtest").encode()
    sync_io = SyncIO(raw, DEFAULT_MAX_ITEM_BYTES)
    async_io = AsyncIO(AsyncConnection(*SERVER, 5.0), DEFAULT_MAX_ITEM_BYTES)

    async def run(flow: Flow[bool]) -> bool:
        return sync_io.run(flow) if mode == "sync" else await async_io.run(flow)

    try:
        assert raw.set(name, b"x", expire=60, noreply=False)
        assert await run(_delete(name)) is True
        assert raw.get(name) is None
        assert await run(_delete(name)) is False
    finally:
        await async_io.connection.aclose()


@pytest.mark.parametrize("mode", ["sync", "async", "given async client"])
async def test_a_server_out_of_memory_fails_a_save_with_a_store_error(mode: str) -> None:
    with private_memcached("-M", "-m", "2") as server:
        given = None
        if mode == "given async client":
            address = emcache.MemcachedHostAddress("127.0.0.1", server.port)
            given = await emcache.create_client([address], timeout=5)
        store = MemcachedStore(server.url, prefix="full:", async_client=given)
        filler = Client(("127.0.0.1", server.port), timeout=5, default_noreply=False)
        mode = "async" if given else mode
        try:
            key, now = new_key(), time.time()
            first = record({"a": field("a", "x" * 900)}, now=now)
            assert await call(store, mode, "insert", key, first)
            with pytest.raises(Exception, match="out of memory"):  # noqa: PT012
                for n in range(100_000):
                    filler.set(b"fill:%d" % n, b"x" * 900, expire=600)
            # (each item as large as the others: there is no room in their slab class)
            same_size = change(now, set={"a": field("a", "y" * 900)})
            with pytest.raises(SessionStoreError, match="failed in update"):
                await call(store, mode, "update", key, same_size, now)
            another = record({"a": field("a", "z" * 900)}, now=now)
            with pytest.raises(SessionStoreError, match="failed in insert"):
                await call(store, mode, "insert", new_key(), another)
            assert live(await call(store, mode, "load", key, now)).fields == first.fields
            if given is not None:  # a client given to the store is kept, open, after a failure
                assert await given.get(name_of(store, key)) is not None
        finally:
            filler.close()
            await call(store, mode, "close")
            if given is not None:
                await given.close()


def test_a_sweep_reads_a_long_key_listing_and_removes_every_dead_item(raw: Client) -> None:
    store = MemcachedStore(MEMCACHED_URL, prefix=unique("swtest") + ":")
    try:
        now = time.time()
        dead = record(now=now - 100, ttl=10)
        value = encode_record(dead, None, pack_record(dead))
        names = [name_of(store, f"{n:04d}" + "k" * 100) for n in range(1200)]
        assert raw.set_many(dict.fromkeys(names, value), expire=60, noreply=False) == []
        assert store.count_expired(now) == len(names)
        heard: list[int] = []
        assert store.clear_expired(now, progress=heard.append) == len(names)
        assert heard == [*range(100, len(names) + 1, 100), len(names)]
        assert raw.get_many(names) == {}
    finally:
        store.delete_all()
        store.close()


@pytest.fixture
def socket_memcached(tmp_path: Path) -> Iterator[Path]:
    """A private ``memcached`` listening on a Unix socket only."""
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    if not os.access(binary, os.X_OK):
        pytest.skip("memcached is not installed")
    path = tmp_path / "memcached.sock"
    user = ["-u", "root"] if os.geteuid() == 0 else []  # its socket goes in our directory
    process = subprocess.Popen([binary, "-s", str(path), *user], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not path.exists():
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("a private memcached on a Unix socket did not start")
            time.sleep(0.02)
        yield path
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_client_on_a_unix_socket_serves_sessions_and_names_its_socket(
    socket_memcached: Path,
) -> None:
    client = Client(str(socket_memcached), timeout=5, default_noreply=False)
    store = MemcachedStore(prefix="sock:", client=client)
    try:
        key, now = new_key(), time.time()
        assert store.insert(key, record({"a": field("a", "1")}, now=now, ttl=60))
        assert live(store.load(key, now)).fields == {"a": field("a", "1")}
        assert store.count_expired(now + 120) == 0  # a socket's keys are not listed
        findings = dict(store.check())
        assert findings["server"].endswith(f"at {socket_memcached}, 1 items in all")
    finally:
        client.close()
