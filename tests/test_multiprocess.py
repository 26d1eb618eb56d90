"""Two uvicorn processes share one store: a session started in one is used in the other,
and 2 x 200 concurrent writes of distinct keys on one session all land (Redis, a Redis
Cluster, PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sessionware.stores import RedisStore, SQLStore
from tests.servers import POSTGRES_URL, REDIS_URL, require_server
from tests.stores.factories import unique
from tests.test_uvicorn import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_server(kind: str, namespace: str, url: str = "") -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "SESSIONWARE_TEST_STORE": kind, "SESSIONWARE_TEST_NAMESPACE": namespace}
    env["SESSIONWARE_TEST_STORE_URL"] = url
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.served_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/read", timeout=1)
            return process, url
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.communicate()[0].decode(errors="replace")
                raise AssertionError(f"uvicorn did not start: {output}") from None
            time.sleep(0.1)


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.cluster]),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def two_servers(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    kind: str = request.param
    url = REDIS_URL
    if kind == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        require_server(kind)
    namespace = unique("sw_mp")
    mode = "url" if kind == "cluster" else kind
    servers = [start_server(mode, namespace, url) for _ in range(2)]
    try:
        yield servers[0][1], servers[1][1]
    finally:
        for process, _ in servers:
            process.terminate()
            process.communicate(timeout=10)  # also closes the output pipe
        if kind in ("redis", "cluster"):
            redis_store = RedisStore(url, prefix=namespace + ":")
            redis_store.delete_all()
            redis_store.close()
        else:
            sql_store = SQLStore(POSTGRES_URL, table=namespace)
            sql_store.drop_table()
            sql_store.close()


def test_a_session_moves_between_processes(two_servers: tuple[str, str]) -> None:
    first, second = two_servers
    with httpx.Client() as client:
        client.get(first + "/slow-set?k=user&v=ada")
        cookie = {"Cookie": f"sessionid={client.cookies['sessionid']}"}
    seen = httpx.get(second + "/read", headers=cookie).json()
    assert seen["data"] == {"user": "ada"}
    httpx.get(second + "/slow-set?k=cart&v=apple", headers=cookie)
    back = httpx.get(first + "/read", headers=cookie).json()
    assert back["data"] == {"user": "ada", "cart": "apple"}
    assert back["pid"] != seen["pid"]


def test_two_processes_x_200_writes_lose_nothing(two_servers: tuple[str, str]) -> None:
    with httpx.Client() as client:
        client.get(two_servers[0] + "/slow-set?k=start")
        cookie = {"Cookie": f"sessionid={client.cookies['sessionid']}"}

    shared = httpx.Client(limits=httpx.Limits(max_connections=32))  # thread-safe, keeps alive

    def one(job: tuple[int, int]) -> int:
        server, i = job
        url = f"{two_servers[server]}/slow-set?k=p{server}-{i}&delay=0.005"
        return shared.get(url, headers=cookie).status_code

    jobs = [(server, i) for i in range(200) for server in (0, 1)]
    with shared, ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, jobs))
    assert statuses == [200] * 400
    data = httpx.get(two_servers[1] + "/read", headers=cookie).json()["data"]
    assert set(data) == {"start", *(f"p{s}-{i}" for s in (0, 1) for i in range(200))}
