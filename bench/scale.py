"""Scale: store latency as the table grows, a big purge under load, and bounded memory.

- ``SQLStore`` (SQLite, PostgreSQL) and ``RedisStore``: load / update / create latency
  (sync API, one call at a time, random keys) at 10^3, 10^5 and 10^6 stored sessions.
  The population is bulk-inserted with the store's own encoding (SQL ``executemany``
  in batches, Redis pipelines), never request by request.
- ``clear_expired()`` on 10^6 expired sessions, run in its own process (as the
  ``sessionware clear-expired`` command would) while this process keeps loading and
  updating 10^3 live sessions and records the latency of each.
- ``MemoryStore(max_entries=100_000)``: traced memory while 10^6 distinct sessions are
  created, sampled every 10^5.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import redis

from sessionware._keys import new_key
from sessionware._records import Change, Record, pack_fields
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import MemoryStore, RedisStore, SQLStore
from sessionware.stores import _redis_layout as redis_layout
from sessionware.stores.base import SessionStore

from .apps import PROFILE
from .config import POSTGRES_URL, REDIS_URL, Run

TWO_WEEKS = 1_209_600
BATCH = 10_000
LIVE = 1_000  # live sessions the concurrent requests use during the purge
CLEAR_TIMEOUT = 1200.0  # seconds one clear_expired() may take before it is stopped

CODEC = FieldCodec(JSONSerializer())

Stats = dict[str, float]


def percentiles(samples_ns: list[int]) -> Stats:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {
        "n": len(ordered),
        "p50_us": at(0.50),
        "p90_us": at(0.90),
        "p99_us": at(0.99),
        "max_us": ordered[-1] / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


def session_data(i: int) -> dict[str, Any]:
    return {**PROFILE, "user_id": i, "username": f"user{i}"}


def session_record(i: int, created: float, expires_at: float) -> Record:
    """A session as the middleware stores it: each value encoded into its own field."""
    return Record(CODEC.encode_all(session_data(i)), created, expires_at)


def changing_n(i: int) -> Change:
    return Change(set={"n": CODEC.encode("n", i)}, expires_at=time.time() + TWO_WEEKS)


# -- bulk population with each store's own encoding --------------------------------------


def populate_sql(store: SQLStore, keys: list[str], expires_at: float) -> None:
    created = time.time()
    for start in range(0, len(keys), BATCH):
        rows = [
            {
                "session_key": key,
                "data": pack_fields(CODEC.encode_all(session_data(start + offset))),
                "created_at": created,
                "expires_at": expires_at,
                "expiry": None,
                "kind": "record",
            }
            for offset, key in enumerate(keys[start : start + BATCH])
        ]
        with store.engine.begin() as conn:
            conn.execute(store.table.insert(), rows)
    if store.engine.dialect.name == "sqlite":
        # Start from an empty WAL, as a table that grew over time would (the bulk insert
        # left a WAL that the next commit would otherwise checkpoint, stalling it).
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    if store.engine.dialect.name == "postgresql":
        # What autovacuum would have done to a table that grew this much over time.
        with store.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'ANALYZE "{store.table.name}"'
            )


def populate_redis(store: RedisStore, keys: list[str], expires_at: float, ttl: bool) -> None:
    """``ttl=False`` leaves the hashes without a Redis TTL: records whose TTL was lost,
    the only ones ``clear_expired`` has to remove (Redis expires the others itself)."""
    created = time.time()
    client = redis.Redis.from_url(REDIS_URL)
    prefix = store.prefix.encode()
    for start in range(0, len(keys), BATCH):
        pipe = client.pipeline(transaction=False)
        for offset, key in enumerate(keys[start : start + BATCH]):
            pairs = redis_layout.record_pairs(session_record(start + offset, created, expires_at))
            name = prefix + key.encode()
            pipe.hset(name, mapping=dict(zip(pairs[::2], pairs[1::2], strict=True)))
            if ttl:
                pipe.pexpireat(name, redis_layout.pexpireat(expires_at))
        pipe.execute()
    client.close()


def populate(store: SessionStore, keys: list[str], expires_at: float, ttl: bool = True) -> None:
    if isinstance(store, SQLStore):
        populate_sql(store, keys, expires_at)
    elif isinstance(store, RedisStore):
        populate_redis(store, keys, expires_at, ttl)
    else:
        raise TypeError(type(store).__name__)


# -- latency at growing sizes ------------------------------------------------------------


def make_store(kind: str, run: Run, name: str) -> SessionStore:
    if kind == "sqlite":
        return SQLStore(f"sqlite:///{run.path(name + '.db')}", table=run.sql_table(name))
    if kind == "postgres":
        return SQLStore(POSTGRES_URL, table=run.sql_table(name))
    if kind == "redis":
        return RedisStore(REDIS_URL, prefix=run.redis_prefix(name))
    raise ValueError(kind)


def drop(store: SessionStore) -> None:
    if isinstance(store, SQLStore):
        store.drop_table()
    elif isinstance(store, RedisStore):
        store.delete_all()
    store.close()


def timed(op: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    op()
    return time.perf_counter_ns() - start


def latencies(store: SessionStore, keys: list[str], samples: int, seed: int) -> dict[str, Stats]:
    rng = random.Random(seed)
    now = time.time()
    picks = [rng.choice(keys) for _ in range(samples)]
    for key in picks[:50]:  # warm the connection and the statement caches
        store.load(key, now)
    loads = [timed(partial(store.load, key, time.time())) for key in picks]
    updates = []
    for i, key in enumerate(picks):
        updates.append(timed(partial(store.update, key, changing_n(i), time.time())))
    creates = []
    for i in range(samples):
        record = session_record(i, time.time(), time.time() + TWO_WEEKS)
        creates.append(timed(partial(store.insert, new_key(), record)))
    return {
        "load": percentiles(loads),
        "update": percentiles(updates),
        "create": percentiles(creates),
    }


def growth(kind: str, run: Run, sizes: list[int], samples: int) -> dict[str, Any]:
    """Latencies at each size; the population grows in place from one size to the next."""
    store = make_store(kind, run, f"scale-{kind}")
    keys: list[str] = []
    out: dict[str, Any] = {}
    try:
        store.load(new_key(), time.time())  # creates the SQL table
        for size in sizes:
            fresh = [new_key() for _ in range(size - len(keys))]
            started = time.perf_counter()
            populate(store, fresh, time.time() + TWO_WEEKS)
            keys += fresh
            filled = time.perf_counter() - started
            out[str(size)] = {"populate_s": filled, **latencies(store, keys, samples, seed=size)}
            print(f"  scale {kind} {size:>9,}: populated in {filled:.1f}s", file=sys.stderr)
    finally:
        drop(store)
    return out


# -- clear_expired on a big purge, under concurrent requests ------------------------------


def purge_under_load(kind: str, run: Run, expired: int) -> dict[str, Any]:
    name = f"purge-{kind}"
    store = make_store(kind, run, name)
    try:
        store.load(new_key(), time.time())
        started = time.perf_counter()
        populate(store, [new_key() for _ in range(expired)], time.time() - 60, ttl=False)
        live = [new_key() for _ in range(LIVE)]
        populate(store, live, time.time() + TWO_WEEKS)
        filled = time.perf_counter() - started
        print(f"  purge {kind}: {expired:,} expired rows in {filled:.1f}s", file=sys.stderr)
        baseline = _requests_while(store, live, lambda: _sleeper(3.0))
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.scale", "clear", kind, run.id, str(run.scratch), name],
            stdout=subprocess.PIPE,
            env=run.env(),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )
        deadline = time.monotonic() + CLEAR_TIMEOUT
        during = _requests_while(store, live, lambda: _waiter(worker, deadline))
        if worker.poll() is None:
            worker.kill()
            worker.wait()
            cleared = {"removed": None, "clear_s": None, "timed_out_s": CLEAR_TIMEOUT}
        else:
            out, _ = worker.communicate()
            if worker.returncode != 0:
                raise RuntimeError(f"clear_expired worker failed for {kind}")
            cleared = json.loads(out)
        return {
            "expired": expired,
            "populate_s": filled,
            **cleared,
            "baseline": baseline,
            "during": during,
        }
    finally:
        drop(store)


def _sleeper(seconds: float) -> Iterator[bool]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield True


def _waiter(proc: subprocess.Popen[bytes], deadline: float) -> Iterator[bool]:
    while proc.poll() is None and time.monotonic() < deadline:
        yield True


def _requests_while(
    store: SessionStore, live: list[str], running: Callable[[], Iterator[bool]]
) -> dict[str, Any]:
    """Alternate load and update of random live sessions while ``running`` yields.

    A probe thread sleeps 1 ms at a time and records how late it wakes: when a request
    and the probe stall together, the machine (not the store) held everyone up.
    """
    rng = random.Random(7)
    loads: list[int] = []
    updates: list[int] = []
    slow: list[tuple[float, str, float]] = []
    probe = _Probe()
    probe.start()
    started = time.perf_counter()
    try:
        for i, _ in enumerate(running()):
            key = rng.choice(live)
            loads.append(timed(partial(store.load, key, time.time())))
            updates.append(timed(partial(store.update, key, changing_n(i), time.time())))
            for op, took in (("load", loads[-1]), ("update", updates[-1])):
                if took > SLOW_NS:
                    slow.append((time.perf_counter(), op, took / 1e6))
    finally:
        probe.stop()
    # A slow request is the machine's doing when the probe overslept over most of it.
    unexplained = [
        (end, op, ms) for end, op, ms in slow if probe.overlap_ms(end - ms / 1000, end) < ms / 2
    ]
    slow.sort(key=lambda event: -event[2])
    return {
        "seconds": time.perf_counter() - started,
        "load": percentiles(loads),
        "update": percentiles(updates),
        "slowest": [
            {"at_s": round(end - started, 3), "op": op, "ms": ms} for end, op, ms in slow[:10]
        ],
        "worst_unexplained_ms": max((ms for _end, _op, ms in unexplained), default=0.0),
        "probe": probe.summary(started),
    }


SLOW_NS = 20_000_000


class _Probe(threading.Thread):
    """Sleeps 1 ms in a loop; how late it wakes up measures stalls of the whole process."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self._stop_event = threading.Event()
        self.lates: list[tuple[float, float]] = []  # (perf_counter at wake-up, ms late)

    def run(self) -> None:
        while not self._stop_event.is_set():
            before = time.perf_counter()
            time.sleep(0.001)
            after = time.perf_counter()
            late = (after - before - 0.001) * 1000
            if late > SLOW_NS / 1e6:
                self.lates.append((after, late))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def overlap_ms(self, start: float, end: float) -> float:
        """How long, within ``[start, end]``, the probe was stalled (overslept)."""
        total = 0.0
        for woke, late in self.lates:
            stalled_from = woke - late / 1000
            total += max(0.0, min(end, woke) - max(start, stalled_from))
        return total * 1000

    def summary(self, started: float) -> dict[str, Any]:
        worst = sorted(self.lates, key=lambda event: -event[1])[:10]
        return {
            "stalls_over_20ms": len(self.lates),
            "worst": [{"at_s": round(at - started, 3), "ms": ms} for at, ms in worst],
        }


def clear_worker(kind: str, run_id: str, scratch: str, name: str) -> None:
    """In the child process: one ``clear_expired()``, timed; prints JSON."""
    from pathlib import Path

    store = make_store(kind, Run(run_id, Path(scratch)), name)
    started = time.perf_counter()
    removed = store.clear_expired()
    seconds = time.perf_counter() - started
    store.close()
    print(json.dumps({"removed": removed, "clear_s": seconds}))


# -- MemoryStore under max_entries ----------------------------------------------------------


def memory_flatness(total: int, max_entries: int, every: int) -> dict[str, Any]:
    store = MemoryStore(max_entries=max_entries)
    samples = []
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        now = time.time()
        started = time.perf_counter()
        for i in range(1, total + 1):
            store.insert(new_key(), session_record(i, now, now + TWO_WEEKS))
            if i % every == 0:
                current = tracemalloc.get_traced_memory()[0] - base
                entries = len(store._entries)
                samples.append(
                    {
                        "created": i,
                        "entries": entries,
                        "traced_bytes": current,
                        "bytes_per_session": current / entries,
                        "rss_bytes": _rss(),
                    }
                )
        seconds = time.perf_counter() - started
    finally:
        tracemalloc.stop()
    return {
        "total": total,
        "max_entries": max_entries,
        "seconds_traced": seconds,
        "samples": samples,
        "bytes_per_session": samples[-1]["bytes_per_session"],
    }


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_scale(run: Run, quick: bool) -> dict[str, Any]:
    sizes = [10**3, 10**4] if quick else [10**3, 10**5, 10**6]
    expired = 10**4 if quick else 10**6
    samples = 300 if quick else 2000
    result: dict[str, Any] = {"sizes": sizes, "samples": samples, "growth": {}, "purge": {}}
    for kind in ("sqlite", "postgres", "redis"):
        result["growth"][kind] = growth(kind, run, sizes, samples)
    for kind in ("sqlite", "postgres", "redis"):
        result["purge"][kind] = purge_under_load(kind, run, expired)
    total = 10**5 if quick else 10**6
    result["memory"] = memory_flatness(total, max_entries=total // 10, every=total // 10)
    return result


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "clear":
        clear_worker(*sys.argv[2:])
    else:
        sys.exit("usage: python -m bench.scale clear KIND RUN_ID SCRATCH NAME")
