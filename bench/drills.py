"""Failover drills: ``python -m bench.drills`` (or ``bash bench/run --drills``).

Two uvicorn processes serve ``bench.drill_app`` on one RedisStore while
``bench.drill_load`` drives them; mid-load a fault strikes the store:

- ``kill``: SIGKILL a master (a Redis Cluster shard's, or the Sentinel set's), wait
  until a replica is promoted, then start the killed server again (it rejoins as a
  replica); with ``wait_replicas`` 0 and 1;
- ``lagging``: the same, but the master's replicas stopped receiving ``LAG`` seconds
  before the kill (each replica frozen, its replication link closed by the master), so
  the writes of those last moments exist on the master alone when it dies;
- ``partition``: the app and the store in two network namespaces joined by a veth pair
  (``bench.drill_net``); the link is cut for ``CUT_SECONDS``, then restored.

Each drill is measured by ``bench.drill_report``; the report goes to docs/scale.md (its
section between the ``drills`` markers) with a chart, docs/scale.png, and the raw data
to bench/results/raw/. Everything a drill starts is stopped and removed at its end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.redis_topologies import ClusterSet, SentinelSet, dying_with_us, free_port

from . import drill_net
from .drill_app import URL_VAR
from .drill_report import draw, summarize
from .drill_text import render_section, replace_section

ROOT = Path(__file__).resolve().parent.parent
RAW_DIR = ROOT / "bench" / "results" / "raw"
TIMEOUT, WAIT_TIMEOUT = 1.0, 0.5  # the store's options in every drill
BEFORE, AFTER = 7.0, 13.0  # seconds of load before the fault, and after it
CUT_SECONDS = 5.0
LAG = 0.5


def redis_config(wait_replicas: int) -> list[str]:
    """With ``wait_replicas``, the masters also refuse writes outright while they lack a
    replica, rather than make them and fail the WAIT (see docs/scale.md)."""
    if not wait_replicas:
        return []
    return [f"min-replicas-to-write {wait_replicas}", "min-replicas-max-lag 5"]


USERS = 24


@dataclass(frozen=True)
class Drill:
    topology: str  # "cluster" | "sentinel"
    fault: str  # "kill" | "lagging" | "partition"
    wait_replicas: int

    @property
    def name(self) -> str:
        return f"{self.topology}-{self.fault}-wait{self.wait_replicas}"

    @property
    def title(self) -> str:
        what = {
            "kill": "master SIGKILLed",
            "lagging": f"master SIGKILLed {LAG:g} s after its replicas stopped receiving",
            "partition": f"app cut off the store for {CUT_SECONDS:g} s",
        }
        shape = {
            "cluster": "Redis Cluster (3 masters, 3 replicas)",
            "sentinel": "Sentinel (1 master, 2 replicas, 3 sentinels)",
        }
        return f"{shape[self.topology]}, {what[self.fault]}, wait_replicas={self.wait_replicas}"


DRILLS = [
    *(
        Drill(shape, fault, wait)
        for shape in ("cluster", "sentinel")
        for fault in ("kill", "lagging")
        for wait in (0, 1)
    ),
    Drill("cluster", "partition", 1),
    Drill("sentinel", "partition", 1),
]


def store_url(topology: ClusterSet | SentinelSet, wait_replicas: int) -> str:
    options = f"prefix=swdrill%3A&timeout={TIMEOUT:g}&wait_replicas={wait_replicas}"
    return f"{topology.url}?{options}&wait_timeout={WAIT_TIMEOUT:g}"


@contextmanager
def app_servers(url: str, scratch: Path, count: int = 2) -> Iterator[list[str]]:
    """``count`` uvicorn processes of the drill app on ``url``; their base URLs."""
    env = {**os.environ, URL_VAR: url}
    processes, bases = [], []
    try:
        for index in range(count):
            port = free_port()
            log = open(scratch / f"uvicorn-{index}.log", "wb")  # noqa: SIM115 - closed below
            command = [*dying_with_us(), sys.executable, "-m", "uvicorn", "--factory"]
            command += ["bench.drill_app:app", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--no-access-log", "--log-level", "warning"]
            processes.append(
                (subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log), log)
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            _wait_answering(base)
        yield bases
    finally:
        for process, log in processes:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()


def _wait_answering(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/read", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the drill app at {base} did not start")


def start_load(bases: list[str], until: float, out: Path) -> subprocess.Popen[bytes]:
    command = [*dying_with_us(), sys.executable, "-m", "bench.drill_load"]
    command += ["--servers", ",".join(bases), "--users", str(USERS), "--until", str(until)]
    return subprocess.Popen([*command, "--out", str(out)], cwd=ROOT)


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def run_kill(drill: Drill, scratch: Path) -> dict[str, Any]:
    events: dict[str, float] = {}
    kind = ClusterSet if drill.topology == "cluster" else SentinelSet
    with (
        kind() as topology,
        app_servers(store_url(topology, drill.wait_replicas), scratch) as bases,
    ):
        start = time.time()
        load = start_load(bases, start + BEFORE + AFTER, scratch / "load.json")
        if isinstance(topology, ClusterSet):
            victim = topology.masters_now()[0]
            replicas = [topology.replica_of(victim)]
        else:
            victim = topology.master()
            replicas = [node for node in topology.data if node is not victim]
        if drill.fault == "lagging":
            _sleep_until(start + BEFORE - LAG)
            events["replicas cut"] = time.time()
            for replica in replicas:
                replica.freeze()
            with victim.client() as client:
                client.client_kill_filter(_type="replica")
        _sleep_until(start + BEFORE)
        events["fault"] = time.time()
        victim.kill()
        for replica in replicas:
            replica.thaw()
        if isinstance(topology, ClusterSet):
            topology.wait_promoted(replicas[0])
        else:
            topology.wait_promoted(victim)
        events["promoted"] = time.time()
        topology.bring_back(victim)
        events["back"] = time.time()
        load.wait()
    return {**json.loads((scratch / "load.json").read_text()), "events": events}


def run_partition_inside(drill: Drill, scratch: Path) -> dict[str, Any]:
    """The partition drill, run inside the app namespace (see ``run_partition``)."""
    events: dict[str, float] = {}
    kind = ClusterSet if drill.topology == "cluster" else SentinelSet
    store = kind(
        host=drill_net.STORE_HOST,
        launcher=drill_net.in_store(),
        config=redis_config(drill.wait_replicas),
    )
    with store as topology, app_servers(store_url(topology, drill.wait_replicas), scratch) as bases:
        start = time.time()
        load = start_load(bases, start + BEFORE + AFTER, scratch / "load.json")
        _sleep_until(start + BEFORE)
        events["fault"] = time.time()
        drill_net.cut()
        _sleep_until(events["fault"] + CUT_SECONDS)
        drill_net.restore()
        events["restored"] = time.time()
        load.wait()
    return {**json.loads((scratch / "load.json").read_text()), "events": events}


def run_partition(drill: Drill, scratch: Path) -> dict[str, Any]:
    out = scratch / "partition.json"
    with drill_net.namespaces():
        command = drill_net.in_app(sys.executable, "-m", "bench.drills", "--inside", drill.name)
        subprocess.run([*command, "--out", str(out)], cwd=ROOT, check=True)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def run(drill: Drill) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"swdrill-{drill.name}-") as scratch:
        runner = run_partition if drill.fault == "partition" else run_kill
        result = runner(drill, Path(scratch))
        logs = "".join(p.read_text(errors="replace") for p in Path(scratch).glob("uvicorn-*.log"))
    figures = summarize(result, TIMEOUT)
    return {
        "name": drill.name,
        "title": drill.title,
        "figures": figures,
        "raw": result,
        "app_log": logs[-4000:],
        "app_tracebacks": _tracebacks(logs),
    }


def _tracebacks(log: str, keep: int = 3) -> list[str]:
    """The first tracebacks the app servers logged (an unhandled error is a 500)."""
    found = []
    for block in log.split("Traceback (most recent call last):")[1 : keep + 1]:
        lines = block.splitlines()
        end = next((i for i, line in enumerate(lines[1:], 1) if not line.startswith(" ")), 0)
        found.append("\n".join(lines[: end + 1]))
    return found


def main(argv: list[str] | None = None, command: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.drills", description=__doc__)
    parser.add_argument("--only", help="comma-separated drill names (default: all)")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the newest raw data"
    )
    parser.add_argument("--inside", help=argparse.SUPPRESS)  # the partition drill's own half
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    by_name = {drill.name: drill for drill in DRILLS}
    if args.inside:
        with tempfile.TemporaryDirectory(prefix="swdrill-inside-") as scratch:
            result = run_partition_inside(by_name[args.inside], Path(scratch))
        Path(args.out).write_text(json.dumps(result))
        return 0
    if args.report_only:
        newest = max(RAW_DIR.glob("drills-*.json"), key=lambda path: path.stat().st_mtime)
        saved = json.loads(newest.read_text())
        stamp = saved.get("stamp", newest.stem.removeprefix("drills-"))
        section = render_section(saved["drills"], saved["refused"], saved["command"], stamp)
        draw(saved["drills"], ROOT / "docs" / "scale.png")
        replace_section(ROOT / "docs" / "scale.md", section)
        return 0
    chosen = [by_name[name] for name in args.only.split(",")] if args.only else DRILLS
    if command is None:
        command = "python -m bench.drills" + (f" --only {args.only}" if args.only else "")
    done, refused = [], {}
    for drill in chosen:
        print(f"drill {drill.name} …", file=sys.stderr, flush=True)
        try:
            done.append(run(drill))
        except drill_net.NetworkError as exc:
            refused[drill.name] = str(exc)
            print(f"  refused: {exc}", file=sys.stderr)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    RAW_DIR.mkdir(parents=True, exist_ok=True)
    raw = RAW_DIR / f"drills-{stamp.replace(':', '')}.json"
    saved = {"command": command, "stamp": stamp, "drills": done, "refused": refused}
    raw.write_text(json.dumps(saved))
    section = render_section(done, refused, command, stamp)
    if args.only:  # a partial run prints its figures and leaves the report alone
        print(section)
        return 0
    draw(done, ROOT / "docs" / "scale.png")
    replace_section(ROOT / "docs" / "scale.md", section)
    print(f"wrote docs/scale.md, docs/scale.png and {raw.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
