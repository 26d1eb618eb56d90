"""Which asyncio Memcached client MemcachedStore uses: aiomcache or emcache.

    python -m bench.memcached_clients      # needs memcached on 127.0.0.1:11211

Speed: the commands a session store sends (``get``, ``gets`` then ``cas``, ``add``), one
at a time and sixteen at once, each cell the median of 7 interleaved runs. Safety: a
command that times out on a frozen private server (SIGSTOP), then a read of another key
once the server runs again: a client that put the timed-out connection back in its pool
answers that read with the stale reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable

import aiomcache
import emcache
from emcache.client_errors import NotStoredStorageCommandError

N = 3000
ROUNDS = 7
VALUE = b'{"a":"' + b"x" * 600 + b'"}'
Op = Callable[[int], Awaitable[None]]


def aiomcache_ops(client: aiomcache.Client) -> dict[str, Op]:
    async def get(i: int) -> None:
        await client.get(b"bench:a")

    async def gets_cas(i: int) -> None:
        _, token = await client.gets(b"bench:a")
        assert token is not None
        await client.cas(b"bench:a", VALUE, token)

    async def add(i: int) -> None:
        await client.add(b"bench:aio:%d:%d" % (i, time.monotonic_ns()), VALUE, 60)

    return {"get": get, "gets+cas": gets_cas, "add": add}


def emcache_ops(client: emcache.Client) -> dict[str, Op]:
    async def get(i: int) -> None:
        await client.get(b"bench:a")

    async def gets_cas(i: int) -> None:
        item = await client.gets(b"bench:a")
        assert item is not None
        assert item.cas is not None
        with contextlib.suppress(NotStoredStorageCommandError):  # another task wrote first
            await client.cas(b"bench:a", VALUE, item.cas)

    async def add(i: int) -> None:
        await client.add(b"bench:em:%d:%d" % (i, time.monotonic_ns()), VALUE, exptime=60)

    return {"get": get, "gets+cas": gets_cas, "add": add}


async def per_op(op: Op, concurrency: int) -> float:
    async def worker(first: int) -> None:
        for i in range(first, N, concurrency):
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return (time.perf_counter() - start) / N * 1e6


async def speed() -> None:
    print("µs per operation (median of 7 interleaved runs)")
    for concurrency in (1, 16):
        aio = aiomcache.Client("127.0.0.1", 11211, pool_size=max(2, concurrency))
        em = await emcache.create_client(
            [emcache.MemcachedHostAddress("127.0.0.1", 11211)],
            timeout=5.0,
            max_connections=max(2, concurrency),
        )
        await aio.set(b"bench:a", VALUE)
        clients = {"aiomcache": aiomcache_ops(aio), "emcache": emcache_ops(em)}
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(ROUNDS):
            for name, ops in clients.items():
                for op_name, op in ops.items():
                    samples.setdefault((name, op_name), []).append(await per_op(op, concurrency))
        for name in clients:
            cells = "  ".join(
                f"{op}={statistics.median(samples[(name, op)]):6.1f}"
                for op in ("get", "gets+cas", "add")
            )
            print(f"  {name:10s} {concurrency:2d} at once: {cells}")
        await aio.delete(b"bench:a")
        await aio.close()
        await em.close()


async def timeout_safety() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    binary = shutil.which("memcached") or "/usr/bin/memcached"
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", *user])
    await asyncio.sleep(0.3)
    try:
        aio = aiomcache.Client("127.0.0.1", port, pool_size=1)
        em = await emcache.create_client(
            [emcache.MemcachedHostAddress("127.0.0.1", port)], timeout=0.2, max_connections=1
        )
        await aio.set(b"first", b"1")
        await aio.set(b"second", b"2")

        async def aio_get(key: bytes) -> bytes | None:
            return await asyncio.wait_for(aio.get(key), 0.2)

        async def em_get(key: bytes) -> bytes | None:
            item = await em.get(key)
            return None if item is None else item.value

        for name, get in (("aiomcache", aio_get), ("emcache", em_get)):
            server.send_signal(signal.SIGSTOP)
            with contextlib.suppress(TimeoutError):
                await get(b"first")
            server.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.1)
            answer = await get(b"second")
            verdict = "right" if answer == b"2" else "WRONG"
            print(f"  {name:10s} read after a timeout: {answer!r} ({verdict}, expected b'2')")
        await aio.close()
        await em.close()
    finally:
        server.terminate()
        server.wait()


async def main() -> None:
    await speed()
    print("timeout safety (a frozen server, then a read of another key)")
    await timeout_safety()


if __name__ == "__main__":
    asyncio.run(main())
