"""The real servers the tests use: the shared ones (skip with a reason locally, fail under
CI=true when one does not answer), and private ones a test starts, stops or freezes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import pytest

from tests.redis_topologies import ClusterSet, SentinelSet, TopologyError

REDIS_URL = os.environ.get("SESSIONWARE_TEST_REDIS", "redis://127.0.0.1:6379/9")
POSTGRES_URL = os.environ.get(
    "SESSIONWARE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("SESSIONWARE_TEST_MYSQL", "mysql://root@127.0.0.1:3306/test")
MEMCACHED_URL = os.environ.get("SESSIONWARE_TEST_MEMCACHED", "memcached://127.0.0.1:11211")

_PORTS = {"redis": 6379, "postgres": 5432, "mysql": 3306, "memcached": 11211}

Topology = TypeVar("Topology", ClusterSet, SentinelSet)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_server(name: str) -> None:
    """Skip (locally) or fail (in CI) when the named server does not answer on 127.0.0.1."""
    try:
        with socket.create_connection(("127.0.0.1", _PORTS[name]), timeout=1.0):
            return
    except OSError as exc:
        message = f"{name} server on 127.0.0.1:{_PORTS[name]} does not answer: {exc}"
        if in_ci():
            pytest.fail(message + " (CI=true: server tests must run)")
        pytest.skip(message)


# -- a private Redis server ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require_redis_server() -> str:
    """The ``redis-server`` binary; skip (locally) or fail (CI=true) if it is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if in_ci():
            pytest.fail(message + " (CI=true: the outage tests must run)")
        pytest.skip(message)
    return binary


@dataclass
class PrivateRedis:
    """A ``redis-server`` of this test alone, on its own port: stopped and restarted at will."""

    binary: str
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if not self.launch():
            pytest.fail(f"private redis-server did not start on port {self.port}")

    def launch(self) -> bool:
        """Start the server; False if it did not come up (say, its port was taken)."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if self.info("server", "process_id") == str(self.process.pid):
                    return True  # ours answers (not some other server that holds the port)
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        return False

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a frozen server run again (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the server now (its data is gone: it runs without persistence)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def command(self, *args: str | bytes) -> bytes:
        """Send one command on a fresh connection: a simple reply's line, or a bulk's body."""
        parts = [a.encode() if isinstance(a, str) else a for a in args]
        request = b"*%d\r\n" % len(parts)
        for part in parts:
            request += b"$%d\r\n%s\r\n" % (len(part), part)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            conn.sendall(request)
            reply = b""
            while True:
                line, found, rest = reply.partition(b"\r\n")
                if found and not line.startswith(b"$"):
                    return line
                if found and len(rest) >= int(line[1:]) + 2:
                    return rest[: int(line[1:])]
                chunk = conn.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                reply += chunk

    def info(self, section: str, field: str) -> str:
        for line in self.command("INFO", section).decode().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return value
        raise KeyError(field)

    def dbsize(self) -> int:
        return int(self.command("DBSIZE")[1:])


# -- Redis Cluster and Sentinel, from redis-server ------------------------------------------


@contextmanager
def redis_topology(kind: type[Topology]) -> Iterator[Topology]:
    """A fresh ``ClusterSet`` or ``SentinelSet`` (see ``tests.redis_topologies``), stopped
    and removed on exit however the test ends; skip (locally) or fail (CI) if it cannot
    start here."""
    require_redis_server()
    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli is missing (it comes with redis-server)")
    try:
        topology = kind()
        topology.__enter__()
    except TopologyError as exc:
        message = f"{kind.__name__} did not start: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield topology
    finally:
        topology.stop()
