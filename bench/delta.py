"""What the delta save costs against a blind overwrite, on every server-side store.

sessionware's ``update`` applies one request's change (keys set, keys deleted, expiry)
atomically: a lock, a row lock, a Lua script. A snapshot library instead overwrites the
whole record without reading it, which is cheaper and loses concurrent changes. Both
are timed here on the same store, the same session (the bench's profile) and the same
change (one key), alternating in batches so machine drift hits both alike. The blind
overwrite uses each store's own encoding and is as cheap as that store allows: a dict
assignment, one file replace, one ``UPDATE``, one ``MULTI`` of ``DEL``/``HSET``/
``PEXPIREAT``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sessionware._keys import info_id, new_key
from sessionware._records import Change, Record, pack_fields
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import CachedStore, FileStore, MemoryStore, RedisStore, SQLStore
from sessionware.stores import _redis_layout as redis_layout
from sessionware.stores._file_format import encode_record, file_name
from sessionware.stores.base import SessionStore

from .apps import PROFILE
from .config import MYSQL_URL, POSTGRES_URL, REDIS_URL, Run

KINDS = ("memory", "file", "sqlite", "postgres", "mysql", "redis", "cached")
HOUR = 3600.0
CODEC = FieldCodec(JSONSerializer())

Save = Callable[[int], object]


def run_delta(run: Run, rounds: int, batch: int) -> dict[str, Any]:
    """Median µs per save, delta and blind, per store kind; and their ratio."""
    results: dict[str, Any] = {"rounds": rounds, "batch": batch, "stores": {}, "skipped": {}}
    for kind in KINDS:
        try:
            results["stores"][kind] = _measure(kind, run, rounds, batch)
        except Exception as exc:  # a store that cannot run here is reported, not fatal
            results["skipped"][kind] = f"{type(exc).__name__}: {exc}".splitlines()[0].rstrip(": ")
            print(f"  {kind:9} skipped: {results['skipped'][kind]}", flush=True)
    return results


def _measure(kind: str, run: Run, rounds: int, batch: int) -> dict[str, Any]:
    with _store(kind, run) as store:
        key = new_key()
        now = time.time()
        record = Record(CODEC.encode_all(PROFILE), now, now + HOUR, key_at=now, updated_at=now)
        assert store.insert(key, record) is True, f"{kind}: could not create the session"
        delta, blind = _delta_save(store, key), _blind_save(kind, store, key, record)
        timings: dict[str, list[float]] = {"delta": [], "blind": []}
        for _ in range(rounds):
            for name, save in (("delta", delta), ("blind", blind)):
                timings[name].append(_per_call_us(save, batch))
        medians = {name: statistics.median(values) for name, values in timings.items()}
        print(
            f"  {kind:9} delta {medians['delta']:8.1f} µs  blind {medians['blind']:8.1f} µs"
            f"  ratio {medians['delta'] / medians['blind']:.2f}",
            flush=True,
        )
        return {
            **{f"{name}_us": value for name, value in medians.items()},
            "ratio": medians["delta"] / medians["blind"],
            "samples_us": timings,
        }


def _per_call_us(save: Save, batch: int) -> float:
    start = time.perf_counter_ns()
    for i in range(batch):
        save(i)
    return (time.perf_counter_ns() - start) / batch / 1000


def _delta_save(store: SessionStore, key: str) -> Save:
    def save(i: int) -> object:
        now = time.time()
        change = Change(set={"n": CODEC.encode("n", i)}, expires_at=now + HOUR)
        return store.update(key, change, now)

    return save


def _blind_save(kind: str, store: SessionStore, key: str, record: Record) -> Save:
    """A whole snapshot written over the record, encoded as the store lays it out."""

    def snapshot(i: int) -> Record:
        now = time.time()
        fields = {**record.fields, "n": CODEC.encode("n", i)}
        return Record(fields, record.created_at, now + HOUR, key_at=now, updated_at=now)

    if isinstance(store, MemoryStore):
        return lambda i: _blind_memory(store, key, snapshot(i))
    if isinstance(store, FileStore):
        name, info = file_name(key), info_id(key)
        files = store._files
        return lambda i: files._write(name, encode_record(snapshot(i), info))
    if isinstance(store, SQLStore):
        return lambda i: _blind_sql(store, key, snapshot(i))
    if isinstance(store, RedisStore):
        return lambda i: _blind_redis(store, key, snapshot(i))
    if isinstance(store, CachedStore):
        cache, backing = store.cache, store.store
        assert isinstance(cache, RedisStore)
        assert isinstance(backing, SQLStore)

        def both(i: int) -> None:
            new = snapshot(i)
            _blind_sql(backing, key, new)
            _blind_redis(cache, key, new)

        return both
    raise ValueError(kind)


def _blind_memory(store: MemoryStore, key: str, record: Record) -> None:
    with store._lock:
        store._entries[key] = record


def _blind_sql(store: SQLStore, key: str, record: Record) -> None:
    params = {
        "k": key,
        "now": record.updated_at,
        "v_data": pack_fields(record.fields),
        "v_expires": record.expires_at,
        "v_expiry": None,
        "v_user": None,
    }
    with store._db.single.begin() as conn:
        conn.execute(store._sql.write, params)


def _blind_redis(store: RedisStore, key: str, record: Record) -> None:
    pairs = redis_layout.record_pairs(record)
    name = store._prefix + key.encode()
    client: Any = store._sync.client
    pipe = client.pipeline(transaction=True)
    pipe.delete(name)
    pipe.hset(name, mapping=dict(zip(pairs[::2], pairs[1::2], strict=True)))
    pipe.pexpireat(name, redis_layout.pexpireat(record.expires_at))
    pipe.execute()


@contextmanager
def _store(kind: str, run: Run) -> Iterator[SessionStore]:
    table = run.sql_table(f"delta_{kind}")
    prefix = run.redis_prefix(f"delta-{kind}")
    store: SessionStore
    if kind == "memory":
        store = MemoryStore()
    elif kind == "file":
        store = FileStore(run.path("delta-files"))
    elif kind == "sqlite":
        store = SQLStore(f"sqlite:///{run.path('delta.db')}", table=table)
    elif kind in ("postgres", "mysql"):
        store = SQLStore(POSTGRES_URL if kind == "postgres" else MYSQL_URL, table=table)
    elif kind == "redis":
        store = RedisStore(REDIS_URL, prefix=prefix)
    else:
        store = CachedStore(
            cache=RedisStore(REDIS_URL, prefix=prefix), store=SQLStore(POSTGRES_URL, table=table)
        )
    try:
        yield store
    finally:
        _drop(store)


def _drop(store: SessionStore) -> None:
    if isinstance(store, CachedStore):
        _drop(store.cache)
        _drop(store.store)
        return
    if isinstance(store, SQLStore):
        store.drop_table()
    elif isinstance(store, RedisStore):
        store.delete_all()
    store.close()


def delta_report(result: dict[str, Any], command: str, environment: dict[str, Any]) -> str:
    """results/delta.md: the table and how to reproduce it."""
    lines = [
        "# Delta save against a blind overwrite",
        "",
        f"`{command}` · {result['rounds']} alternating rounds of {result['batch']} saves "
        f"per store, sync API, one change of one key on the bench's profile session · "
        f"load average at start {environment['loadavg_start'][0]:.2f}",
        "",
        "| store | delta save (µs) | blind overwrite (µs) | delta / blind |",
        "|---|---:|---:|---:|",
    ]
    for kind, cell in result["stores"].items():
        lines.append(
            f"| {kind} | {cell['delta_us']:.1f} | {cell['blind_us']:.1f} | {cell['ratio']:.2f} |"
        )
    for kind, why in result.get("skipped", {}).items():
        lines.append(f"| {kind} | not run: {why} | | |")
    lines += [
        "",
        "The delta save reads, merges and writes under the store's own lock (a ``threading``",
        "lock, a file lock, ``SELECT … FOR UPDATE``, a Lua script); the blind overwrite",
        "writes a whole snapshot without reading, as snapshot libraries do, and loses",
        "concurrent changes. `cached` is Redis in front of PostgreSQL: both layers written.",
        "",
    ]
    return "\n".join(lines)
