"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from sessionware._options import Options
from tests.apps import ALL_KINDS, ASGI_KINDS, build_app
from tests.clients import Client
from tests.redis_topologies import ClusterSet, SentinelSet
from tests.servers import PrivateRedis, free_port, redis_topology, require_redis_server


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests run on both event loops anyio supports."""
    backend: str = request.param
    return backend


@pytest.fixture(params=ALL_KINDS)
def app_kind(request: pytest.FixtureRequest) -> str:
    """Every behaviour test runs on Starlette, FastAPI, raw ASGI, Flask and plain WSGI."""
    kind: str = request.param
    return kind


MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(app_kind: str) -> Iterator[MakeClient]:
    """``make_client(**options)``: the test app of this kind behind a middleware, and a client."""
    with ExitStack() as stack:

        def make(**options: Any) -> Client:
            app = build_app(app_kind, Options(**options))  # type: ignore[typeddict-item]
            return Client(app, app_kind in ASGI_KINDS, stack)

        yield make


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterSet]:
    """A Redis Cluster (3 masters, 3 replicas) shared by the tests that leave it healthy."""
    with redis_topology(ClusterSet) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[SentinelSet]:
    """A Sentinel set (1 master, 2 replicas, 3 sentinels) shared likewise."""
    with redis_topology(SentinelSet) as sentinels:
        yield sentinels


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A running ``redis-server`` of this test alone (never the shared one on 6379)."""
    binary = require_redis_server()
    for _ in range(3):  # another process may take the free port before the server binds it
        server = PrivateRedis(binary, free_port())
        if server.launch():
            break
    else:
        pytest.fail("could not start a private redis-server")
    try:
        yield server
    finally:
        server.stop()
