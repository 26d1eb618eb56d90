"""The Redis clients a RedisStore builds from its URL: one server, Redis Cluster, Sentinel.

URLs (nothing connects until the first operation):

- ``redis://``, ``rediss://``, ``unix://``: one server, as redis-py reads them (query
  options such as ``?db=`` go to redis-py);
- ``redis+cluster://[[user]:password@]host:port[,host:port…][/]``: any reachable node
  finds the others;
- ``redis+sentinel://[[user]:password@]host:port[,host:port…]/service_name[/db]``: the
  sentinels are asked for the master of ``service_name``; the password is the data
  nodes' (the sentinels are reached without one).

No built client re-sends a command after a failure (redis-py would, after a dropped
connection, even if the server had run it): the store's drivers decide what is safe to
try again (``_redis_failures.unsent``). The pools still test each idle connection before
lending it and replace one the server has closed, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.backoff
import redis.cluster
import redis.retry
import redis.sentinel

if TYPE_CHECKING:
    from ._redis_io import AsyncClient, SyncClient

SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "redis+sentinel")
_DEFAULT_PORTS = {"redis+cluster": 6379, "redis+sentinel": 26379}


@dataclass(frozen=True, slots=True)
class Target:
    """What a store URL names. ``url`` is kept for one server (redis-py parses it)."""

    kind: Literal["server", "cluster", "sentinel"]
    url: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_target(url: str) -> Target:
    """The topology ``url`` names; ``ValueError`` (never quoting a password) otherwise."""
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(
            f"RedisStore url must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if scheme in ("redis", "rediss", "unix"):
        return Target("server", url=url)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"{scheme}:// URLs take no query options here")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    nodes = tuple(_host_port(item, _DEFAULT_PORTS[scheme], scheme) for item in hosts.split(","))
    common = {
        "nodes": nodes,
        "username": unquote(username) or None,
        "password": unquote(password) or None,
    }
    path = [unquote(segment) for segment in parts.path.split("/") if segment]
    if scheme == "redis+cluster":
        if path:
            raise ValueError("redis+cluster:// URLs have no path (a cluster has one database)")
        return Target("cluster", **common)  # type: ignore[arg-type]
    if not path or len(path) > 2:
        raise ValueError("redis+sentinel:// URLs need /service_name and may add /db")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise ValueError("the database of a redis+sentinel:// URL must be a number")
        db = int(path[1])
    return Target("sentinel", service=path[0], db=db, **common)  # type: ignore[arg-type]


def _host_port(item: str, default: int, scheme: str) -> tuple[str, int]:
    item = item.strip()
    if item.startswith("["):  # [IPv6]:port
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
    if not host:
        raise ValueError(f"{scheme}:// URLs need host:port[,host:port…]")
    if port and not port.isdigit():
        raise ValueError(f"{scheme}:// URLs need numeric ports")
    return host, int(port) if port else default


def _no_retry(kind: type[Any]) -> Any:
    return kind(redis.backoff.NoBackoff(), 0)


def _socket_options(timeout: float) -> dict[str, Any]:
    # Pools unbounded, as redis-py's were before 6: a bounded pool (100 connections by
    # default now) raises when it is full instead of waiting, so a burst of requests in
    # one process would fail although the server has room.
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "max_connections": 2**31,
    }


def _for_sentinels(options: dict[str, Any]) -> dict[str, Any]:
    """The sentinels' connections: the same timeouts, no password (see the module doc)."""
    return {name: value for name, value in options.items() if name != "max_connections"}


def _auth(target: Target) -> dict[str, Any]:
    return {"username": target.username, "password": target.password}


def open_sync(target: Target, timeout: float) -> tuple[SyncClient, Callable[[], None]]:
    """A sync client for ``target`` and what closes it (and the sentinel connections)."""
    options = {**_socket_options(timeout), "retry": _no_retry(redis.retry.Retry)}
    if target.kind == "server":
        client = redis.Redis.from_url(target.url, **options)
        return client, client.close
    if target.kind == "cluster":
        # Reads the cluster's layout from the first node that answers: connects now.
        nodes = [
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in target.nodes
        ]
        cluster = redis.cluster.RedisCluster(startup_nodes=nodes, **_auth(target), **options)
        return cluster, cluster.close
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes), sentinel_kwargs=_for_sentinels(options)
    )
    master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.service, db=target.db, **_auth(target), **options
    )

    watchers = list(sentinel.sentinels)  # redis-py reorders that list as it goes

    def close() -> None:
        master.close()
        master.connection_pool.disconnect()  # given to it by master_for, so left open
        for watcher in watchers:
            watcher.close()

    return master, close


def open_async(target: Target, timeout: float) -> tuple[AsyncClient, Callable[[], Awaitable[None]]]:
    """An asyncio client for ``target`` (bound to the running loop) and its closer."""
    options = {**_socket_options(timeout), "retry": _no_retry(redis.asyncio.retry.Retry)}
    if target.kind == "server":
        client = redis.asyncio.Redis.from_url(target.url, **options)
        return client, client.aclose
    if target.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in target.nodes]
        cluster = redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, **_auth(target), **options
        )
        return cluster, cluster.aclose
    sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes), sentinel_kwargs=_for_sentinels(options)
    )
    master = sentinel.master_for(target.service, db=target.db, **_auth(target), **options)

    # redis-py's asyncio client swaps entries of that list across awaits: under load it
    # can lose one (and its connections) from the list
    watchers = list(sentinel.sentinels)

    async def aclose() -> None:
        await master.aclose()
        await master.connection_pool.disconnect()
        for watcher in watchers:
            await watcher.aclose()

    return master, aclose
