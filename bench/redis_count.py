"""Redis commands per request, for every Redis-backed app: round trips and writes.

Two views, taken around the same batch of requests:

- ``MONITOR``, filtered to the app's own key prefix, so other users of the server do not
  count: each command the client sent is one round trip; commands a Lua script ran show
  as ``lua`` and count as work inside that round trip. This is the table's source.
- ``INFO commandstats`` deltas (calls and server µs per command): server-wide, so they
  are exact only while nobody else uses the server; kept in the raw JSON.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis

from .config import REDIS_URL

WRITE_COMMANDS = frozenset(
    {"set", "setex", "psetex", "getex", "getdel", "hset", "hmset", "hsetnx", "hdel", "del"}
    | {"unlink", "expire", "pexpire", "expireat", "pexpireat", "persist", "rename"}
)
_LINE = re.compile(rb'^\+[\d.]+ \[(\d+) ([^\]]+)\] "([^"]+)"(.*)$')


@dataclass
class Counts:
    """Per request, over ``requests`` requests."""

    requests: int
    round_trips: float
    writes: float  # round trips that wrote (a script counts once, whatever it ran)
    commands: dict[str, float] = field(default_factory=dict)  # "hgetall", "lua:hset", …
    commandstats: dict[str, dict[str, float]] = field(default_factory=dict)


class Monitor:
    """A raw ``MONITOR`` connection read by a thread; lines between two sentinels."""

    def __init__(self, url: str = REDIS_URL) -> None:
        parts = urlsplit(url)
        self.db = int(parts.path.strip("/") or 0)
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379))
        self.sock.sendall(b"MONITOR\r\n")
        self.lines: list[bytes] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.client = redis.Redis.from_url(url)
        self._serial = 0

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            with self._cond:
                self.lines.extend(complete)
                self._cond.notify_all()

    def mark(self) -> int:
        """Send a sentinel and wait until MONITOR shows it; the index just after it."""
        self._serial += 1
        token = f"swbench-sentinel-{self._serial}".encode()
        self.client.echo(token)
        deadline = time.monotonic() + 10
        with self._cond:
            while True:
                for index in range(len(self.lines) - 1, -1, -1):
                    if token in self.lines[index]:
                        return index + 1
                if not self._cond.wait(timeout=deadline - time.monotonic()):
                    raise RuntimeError("MONITOR never showed the sentinel")

    def commands(self, start: int, end: int, prefix: str) -> list[tuple[str, bool]]:
        """``(command, from_lua)`` for lines in ``[start, end)`` touching ``prefix``."""
        wanted = prefix.encode()
        found = []
        with self._cond:
            lines = self.lines[start:end]
        for line in lines:
            match = _LINE.match(line)
            if match is None or int(match[1]) != self.db or wanted not in match[4]:
                continue
            found.append((match[3].decode().lower(), match[2] == b"lua"))
        return found

    def commandstats(self) -> dict[str, tuple[int, int]]:
        info: dict[str, Any] = self.client.info("commandstats")
        return {
            name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
            for name, value in info.items()
        }

    def close(self) -> None:
        self.sock.close()
        self.client.close()


class Counting:
    """``with Counting(monitor, prefix, n) as c: <make n requests>``, then ``c.result``."""

    def __init__(self, monitor: Monitor, prefix: str, requests: int) -> None:
        self.monitor = monitor
        self.prefix = prefix
        self.requests = requests
        self._before: dict[str, tuple[int, int]] = {}
        self._start = 0
        self.result: Counts | None = None

    def __enter__(self) -> Counting:
        self._before = self.monitor.commandstats()
        self._start = self.monitor.mark()
        return self

    def __exit__(self, *exc_info: object) -> None:
        end = self.monitor.mark()
        after = self.monitor.commandstats()
        seen = self.monitor.commands(self._start, end, self.prefix)
        n = self.requests
        names: Counter[str] = Counter(f"lua:{name}" if lua else name for name, lua in seen)
        stats: dict[str, dict[str, float]] = {}
        for name, (calls, usec) in after.items():
            old_calls, old_usec = self._before.get(name, (0, 0))
            if name not in ("info", "echo") and calls > old_calls:
                stats[name] = {
                    "calls": (calls - old_calls) / n,
                    "usec_per_call": (usec - old_usec) / (calls - old_calls),
                }
        self.result = Counts(
            requests=n,
            round_trips=sum(1 for _name, lua in seen if not lua) / n,
            writes=_write_round_trips(seen) / n,
            commands={name: k / n for name, k in sorted(names.items())},
            commandstats=stats,
        )


def _write_round_trips(seen: list[tuple[str, bool]]) -> int:
    """Round trips that changed data: a write command, or a script that ran one."""
    writes, current_writes = 0, False
    for name, lua in seen:
        if not lua:
            writes += current_writes
            current_writes = False
        current_writes = current_writes or name in WRITE_COMMANDS
    return writes + current_writes
