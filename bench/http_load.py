"""Over HTTP: one real server per app (uvicorn, or gunicorn for WSGI), driven by ``wrk``.

All servers of a table run at once on free 127.0.0.1 ports, idle except the one being
measured, so rounds can interleave apps without restarting anything. Each server gets
16 session cookies beforehand (16 requests to /write), which wrk's Lua script sends in
turn: the load of 16 logged-in clients on 16 connections.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .config import BENCH_DIR, Run
from .inprocess import Jar, shuffled
from .serve import APP_VAR

LUA = BENCH_DIR / "session.lua"
REPO = BENCH_DIR.parent
CLIENTS = 16


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    cookie_name: str | None
    cookies: list[str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def server_command(kind: Literal["asgi", "wsgi"], port: int) -> list[str]:
    """The same server settings for every app of a table."""
    if kind == "asgi":
        command = [sys.executable, "-m", "uvicorn", "bench.serve:asgi", "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        command += ["--no-access-log", "--log-level", "warning", "--timeout-keep-alive", "30"]
        if _installed("uvloop"):
            command += ["--loop", "uvloop"]
        if _installed("httptools"):
            command += ["--http", "httptools"]
        return command
    command = [sys.executable, "-m", "gunicorn", "bench.serve:wsgi()"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread"]
    command += ["--threads", str(CLIENTS), "--keep-alive", "30", "--log-level", "warning"]
    return command


def start(
    kind: Literal["asgi", "wsgi"], name: str, cookie_name: str | None, run: Run, logs: Path
) -> Server:
    port = free_port()
    log = logs / f"{kind}-{name}.log"
    env = {**run.env(), APP_VAR: name}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(kind, port), cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Server(name, port, proc, log, cookie_name, [])


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited: {server.log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            if get(server.port, "/noop", None)[0] == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer within {timeout}s")


def get(port: int, path: str, cookie: str | None) -> tuple[int, list[tuple[str, str]]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={} if cookie is None else {"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheaders()
    finally:
        conn.close()


def fetch_cookies(server: Server, count: int = CLIENTS) -> None:
    """``count`` new sessions, one /write each; their cookies are what wrk sends."""
    if server.cookie_name is None:
        return
    for _ in range(count):
        status, headers = get(server.port, "/write", None)
        jar = Jar()
        for name, value in headers:
            if name.lower() == "set-cookie":
                jar.take(value.encode("latin-1"))
        if status != 200 or jar.value is None:
            raise RuntimeError(f"{server.name}: /write gave {status} and no session cookie")
        server.cookies.append(jar.value.decode("latin-1"))


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@contextlib.contextmanager
def serving(
    kind: Literal["asgi", "wsgi"], apps: dict[str, str | None], run: Run, logs: Path
) -> Iterator[dict[str, Server]]:
    """Every app of ``apps`` (name -> cookie name) served at once; stopped on exit."""
    servers: dict[str, Server] = {}
    try:
        for name, cookie_name in apps.items():
            servers[name] = start(kind, name, cookie_name, run, logs)
        for server in servers.values():
            wait_ready(server)
            fetch_cookies(server)
        yield servers
    finally:
        for server in servers.values():
            stop(server)


_DURATION = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"unexpected wrk duration {text!r}")
    return float(match[1]) * _DURATION[match[2]]


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output)
        if match is None:
            if default is None:
                raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
            return default
        return match[1]

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        rps=float(find(r"Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"\s50%\s+(\S+)")),
        p99_ms=_ms(find(r"\s99%\s+(\S+)")),
        requests=int(find(r"(\d+) requests in")),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=0 if errors is None else sum(int(n) for n in errors.groups()),
    )


def wrk(server: Server, path: str, seconds: float) -> WrkResult:
    command = ["wrk", "-t1", f"-c{CLIENTS}", f"-d{seconds:g}s", "--latency", "-s", str(LUA)]
    command += [f"http://127.0.0.1:{server.port}{path}", "--", *server.cookies]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def measure(
    servers: dict[str, Server], routes: tuple[str, ...], rounds: int, seconds: float, label: str
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``result[app][route]``: one wrk result per round, rounds interleaved and shuffled."""
    for server in servers.values():  # warm up: pools fill, caches and lazy imports settle
        wrk(server, "/write", min(1.0, seconds))
    cells = [(name, route) for name in servers for route in routes]
    result: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for index in range(rounds):
        for name, route in shuffled(cells, seed=100 + index):
            server = servers[name]
            outcome = wrk(server, route, seconds)
            if outcome.non_2xx or outcome.socket_errors:
                print(
                    f"  warning: {name} {route}: {outcome.non_2xx} non-2xx, "
                    f"{outcome.socket_errors} socket errors (see {server.log})",
                    file=sys.stderr,
                )
            result.setdefault(name, {}).setdefault(route.strip("/"), []).append(asdict(outcome))
        print(f"  HTTP {label} round {index + 1}/{rounds} done", file=sys.stderr)
    return result
