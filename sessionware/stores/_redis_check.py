"""What ``RedisStore.check`` reports: the server it reaches and what its prefix holds,
read without writing anything."""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.cluster import RedisCluster

from .._store import Finding
from ._redis_flows import Metas
from ._redis_io import SyncIO


def check_redis(io: SyncIO, prefix: str, pattern: str) -> list[Finding]:
    """Ping the server, then count the keys under ``pattern`` (``prefix*``) and the live
    sessions among them (one pipelined read per batch of keys). Failures propagate."""
    client = io.client
    io.client.ping()
    findings = [("server", f"{_product(client)} at {_where(client)}")]
    keys = live = 0
    now = time.time()
    for names in io.scan(pattern, None):
        keys += len(names)
        metas = io.perform(Metas(names, (b"e", b"m")))
        live += sum(_is_live(meta, now) for meta in metas)
    findings.append(("keys", f"{keys} under prefix {prefix!r} (sessions, ended keys, indexes)"))
    findings.append(("sessions", f"{live} live"))
    return findings


def _is_live(meta: Any, now: float) -> bool:
    """A session record (no marker field) whose expiry is ahead; other types read as
    errors (an index is a sorted set)."""
    if isinstance(meta, Exception) or meta[0] is None or meta[1] is not None:
        return False
    try:
        return float(meta[0]) > now
    except ValueError:
        return False


def _product(client: redis.Redis | RedisCluster) -> str:
    info: dict[str, Any] = client.info("server")
    if "redis_version" not in info and info:  # a cluster answers per node
        info = next(iter(info.values()))
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    return f"Redis {info.get('redis_version', '(version unknown)')}"


def _where(client: redis.Redis | RedisCluster) -> str:
    """Host and port (or socket) and database; never the password."""
    if isinstance(client, RedisCluster):
        primaries = [node.name for node in client.get_primaries()]  # type: ignore[no-untyped-call]
        return f"a cluster of {len(primaries)} primaries ({', '.join(sorted(primaries))})"
    pool: Any = client.connection_pool
    db = pool.connection_kwargs.get("db", 0)
    if hasattr(pool, "get_master_address"):  # Sentinel: the master it follows now
        host, port = pool.get_master_address()
        return f"{host}:{port} (master of {pool.service_name!r}), db {db}"
    if "path" in pool.connection_kwargs:
        return f"unix socket {pool.connection_kwargs['path']}, db {db}"
    host, port = pool.connection_kwargs.get("host"), pool.connection_kwargs.get("port")
    return f"{host}:{port}, db {db}"
