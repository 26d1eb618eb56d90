"""The servers of the Redis topologies in ``tests.redis_topologies``: one ``redis-server``
(a data node or a sentinel) with its config file, and what every topology shares.

Nothing here needs pytest (the drills in ``bench/`` use it too). Every server is started
so that it dies with the thread that started it (``setpriv --pdeathsig KILL``: start
them from a thread that outlives them); a topology's ``stop()`` kills what is left and
removes its directory.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis

PASSWORD = "sw-topology-secret"
NODE_TIMEOUT_MS = 1000
SERVICE = "swmaster"


class TopologyError(RuntimeError):
    """A topology did not come up (or did not heal) in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def dying_with_us() -> list[str]:
    """A prefix that makes a server die with the thread that started it, if available."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` (exceptions count as "not yet") until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise TopologyError(f"{what}: not reached within {timeout:.0f} s (last error: {last!r})")


@dataclass
class Node:
    """One ``redis-server`` (a data node or a sentinel) with its config file."""

    directory: Path
    port: int
    config: list[str]
    host: str = "127.0.0.1"
    sentinel: bool = False
    launcher: Sequence[str] = ()  # e.g. ("ip", "netns", "exec", "ns") to run it elsewhere
    process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.directory / f"{'sentinel' if self.sentinel else 'node'}-{self.port}.conf"

    def start(self) -> None:
        """Start (or restart, with the config it may have rewritten) and wait until it answers."""
        assert self.process is None or self.process.poll() is not None, "already running"
        if not self.config_file.exists():
            lines = [
                f"port {self.port}",
                f"bind {self.host}",
                f"dir {self.directory}",
                f"logfile {self.directory / f'{self.port}.log'}",
                "daemonize no",
                *self.config,
            ]
            self.config_file.write_text("\n".join(lines) + "\n")
        binary = shutil.which("redis-server") or "redis-server"
        command = [*self.launcher, *dying_with_us(), binary, str(self.config_file)]
        if self.sentinel:
            command.append("--sentinel")
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        process = self.process

        def answers() -> bool:
            if process.poll() is not None:
                raise TopologyError(f"redis-server on {self.name} exited: {self.log_tail()}")
            with self.client() as client:
                return str(client.info("server")["process_id"]) == str(process.pid) or bool(
                    self.launcher  # a wrapped server reports its own pid namespace's id
                )

        wait_until(answers, 10, f"redis-server on {self.name} answering")

    def client(self) -> redis.Redis:
        """A plain client of this server alone, for looking and steering."""
        password = None if self.sentinel else PASSWORD
        return redis.Redis(
            self.host, self.port, password=password, socket_timeout=2, decode_responses=True
        )

    def kill(self) -> None:
        """SIGKILL: the server dies at once, without a word to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was frozen
            self.process.kill()
            self.process.wait()

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        log = self.directory / f"{self.port}.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Topology:
    """Servers in one temporary directory, on ``host``, optionally started through a
    ``launcher`` (``ip netns exec NS``: then on ports picked for an empty namespace)."""

    host: str = "127.0.0.1"
    launcher: Sequence[str] = ()
    config: Sequence[str] = ()  # more lines for every data node's config
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sw-redis-")))
    nodes: list[Node] = field(default_factory=list)

    def _node(self, config: list[str], sentinel: bool = False) -> Node:
        node = Node(
            self.directory,
            free_port(self.host) if not self.launcher else _pick_port(self.nodes),
            config,
            self.host,
            sentinel,
            self.launcher,
        )
        self.nodes.append(node)
        return node

    def stop(self) -> None:
        """Kill every process and remove the directory (safe to call twice)."""
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def node_at(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)


def _pick_port(taken: list[Node]) -> int:
    """A port for a server in another network namespace: the namespace is empty, so any
    port not used by the topology itself is free there."""
    used = {node.port for node in taken}
    port = 17000
    while port in used or port + 10000 in used:
        port += 1
    return port


#: Every data node's config: no persistence, a password, quick replication.
DATA_CONFIG = [
    'save ""',
    "appendonly no",
    f"requirepass {PASSWORD}",
    f"masterauth {PASSWORD}",
    "repl-diskless-sync yes",
    "repl-diskless-sync-delay 0",
    "repl-ping-replica-period 1",
]
