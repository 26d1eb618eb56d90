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

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sessionware._keys import new_key
from sessionware._records import Change, Record, pack_record
from sessionware.stores import CachedStore, FileStore, MemoryStore, RedisStore, SQLStore
from sessionware.stores import _redis_layout as redis_layout
from sessionware.stores._file import _file_name
from sessionware.stores._memory import _Entry
from sessionware.stores.base import SessionStore

from .apps import PROFILE
from .config import POSTGRES_URL, REDIS_URL, Run

MYSQL_URL = os.environ.get("SWBENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")
KINDS = ("memory", "file", "sqlite", "postgres", "mysql", "redis", "cached")
HOUR = 3600.0

Save = Callable[[int], object]


def run_delta(run: Run, rounds: int, batch: int) -> dict[str, Any]:
    """Median µs per save, delta and blind, per store kind; and their ratio."""
    results: dict[str, Any] = {"rounds": rounds, "batch": batch, "stores": {}}
    for kind in KINDS:
        with _store(kind, run) as store:
            key = new_key()
            now = time.time()
            record = Record(dict(PROFILE), now, now + HOUR)
            assert store.create(key, record), f"{kind}: could not create the session"
            delta, blind = _delta_save(store, key), _blind_save(kind, store, key, record)
            timings: dict[str, list[float]] = {"delta": [], "blind": []}
            for _ in range(rounds):
                for name, save in (("delta", delta), ("blind", blind)):
                    timings[name].append(_per_call_us(save, batch))
            medians = {name: statistics.median(values) for name, values in timings.items()}
            results["stores"][kind] = {
                **{f"{name}_us": value for name, value in medians.items()},
                "ratio": medians["delta"] / medians["blind"],
                "samples_us": timings,
            }
            print(
                f"  {kind:9} delta {medians['delta']:8.1f} µs  blind {medians['blind']:8.1f} µs"
                f"  ratio {medians['delta'] / medians['blind']:.2f}",
                flush=True,
            )
    return results


def _per_call_us(save: Save, batch: int) -> float:
    start = time.perf_counter_ns()
    for i in range(batch):
        save(i)
    return (time.perf_counter_ns() - start) / batch / 1000


def _delta_save(store: SessionStore, key: str) -> Save:
    def save(i: int) -> object:
        now = time.time()
        return store.update(key, Change(set={"n": i}, expires_at=now + HOUR), now)

    return save


def _blind_save(kind: str, store: SessionStore, key: str, record: Record) -> Save:
    def snapshot(i: int) -> Record:
        now = time.time()
        return Record({**record.data, "n": i}, record.created_at, now + HOUR)

    if isinstance(store, MemoryStore):
        return lambda i: _blind_memory(store, key, snapshot(i))
    if isinstance(store, FileStore):
        name = _file_name(key)
        return lambda i: store._write(name, pack_record(snapshot(i), store.serializer))
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
    entry = _Entry(store._store_data(record.data), record.created_at, record.expires_at, None)
    with store._lock:
        store._entries[key] = entry


def _blind_sql(store: SQLStore, key: str, record: Record) -> None:
    params = {
        "k": key,
        "v_data": store.serializer.dumps(record.data),
        "v_expires": record.expires_at,
        "v_expiry": None,
    }
    with store._single.begin() as conn:
        conn.execute(store._write, params)


def _blind_redis(store: RedisStore, key: str, record: Record) -> None:
    args = redis_layout.create_args(record, store.serializer)
    fields = dict(zip(args[1::2], args[2::2], strict=True))
    name = store._name(key)
    client: Any = store._sync.client
    pipe = client.pipeline(transaction=True)
    pipe.delete(name)
    pipe.hset(name, mapping=fields)
    pipe.pexpireat(name, args[0])
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
    lines += [
        "",
        "The delta save reads, merges and writes under the store's own lock (a ``threading``",
        "lock, a file lock, ``SELECT … FOR UPDATE``, a Lua script); the blind overwrite",
        "writes a whole snapshot without reading, as snapshot libraries do, and loses",
        "concurrent changes. `cached` is Redis in front of PostgreSQL: both layers written.",
        "",
    ]
    return "\n".join(lines)
