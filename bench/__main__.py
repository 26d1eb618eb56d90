"""``python -m bench``: run the benchmarks and write bench/results/ (use ``bash bench/run``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from typing import Any

from .apps import ASGI_APPS, EXPLICIT, ROUTES
from .asgi_inprocess import run_asgi_inprocess
from .cleanup import remove_run
from .config import RAW_DIR, RESULTS_DIR, Run
from .http_load import measure, serving
from .report import write_reports
from .wsgi_apps import WSGI_APPS, WSGI_HTTP_APPS
from .wsgi_inprocess import run_wsgi_inprocess

PACKAGES = (
    "sessionware",
    "starlette",
    "starsessions",
    "flask",
    "flask-session",
    "werkzeug",
    "redis",
    "sqlalchemy",
    "psycopg",
    "asyncmy",
    "aiomysql",
    "pymysql",
    "uvicorn",
    "uvloop",
    "httptools",
    "gunicorn",
    "matplotlib",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bash bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (results/quick.md)")
    parser.add_argument("--scale", action="store_true", help="also run the slow scale suite")
    parser.add_argument("--scale-only", action="store_true", help="run only the scale suite")
    parser.add_argument("--no-http", action="store_true", help="skip the wrk runs")
    parser.add_argument(
        "--delta-only", action="store_true", help="only delta save vs blind overwrite"
    )
    parser.add_argument("--rounds", type=int, help="in-process rounds (default 7, quick 3)")
    parser.add_argument("--http-rounds", type=int, help="wrk rounds (default 2, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per wrk run (default 3, quick 1)")
    parser.add_argument("--only", help="comma-separated ASGI app names (default: all)")
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the reports from the newest raw data"
    )
    parser.add_argument(
        "--drills",
        action="store_true",
        help="only the failover drills (Redis Cluster, Sentinel, partition): docs/scale.md",
    )
    args = parser.parse_args(argv)
    if args.drills:
        from .drills import main as drills

        only = ["--only", args.only] if args.only else []
        return drills(only, command=" ".join(["bash bench/run --drills", *only]))
    if args.report_only:
        for path in write_reports(quick=args.quick):
            print(f"wrote {path}")
        return 0
    command = "bash bench/run" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))

    RAW_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = "-quick" if args.quick else ""
    run = Run.new()
    if args.delta_only:
        return _run_delta(run, command, stamp)
    try:
        if not args.scale_only:
            result = run_main(args, run, command)
            _dump(RAW_DIR / f"main{tag}-{stamp}.json", result)
        if args.scale or args.scale_only:
            from .scale import run_scale

            started = time.perf_counter()
            scale = {"kind": "scale", "quick": args.quick, "command": command, "env": environment()}
            scale["started"] = _now()
            scale.update(run_scale(run, quick=args.quick))
            scale["finished"] = _now()
            scale["seconds"] = time.perf_counter() - started
            _dump(RAW_DIR / f"scale{tag}-{stamp}.json", scale)
    finally:
        removed = remove_run(run)
        print(f"cleaned up: {removed}", file=sys.stderr)
    written = write_reports(quick=args.quick)
    for path in written:
        print(f"wrote {path.relative_to(RESULTS_DIR.parent.parent)}")
    return 0


def _run_delta(run: Run, command: str, stamp: str) -> int:
    from .delta import delta_report, run_delta

    print("delta save vs blind overwrite", file=sys.stderr)
    env = environment()
    try:
        result = run_delta(run, rounds=7, batch=300)
    finally:
        remove_run(run)
    _dump(RAW_DIR / f"delta-{stamp}.json", {"kind": "delta", "env": env, **result})
    path = RESULTS_DIR / "delta.md"
    path.write_text(delta_report(result, command, env))
    print(f"wrote {path.relative_to(RESULTS_DIR.parent.parent)}")
    return 0


def run_main(args: argparse.Namespace, run: Run, command: str) -> dict[str, Any]:
    quick = args.quick
    rounds = args.rounds or (3 if quick else 7)
    seconds = 0.03 if quick else 0.1
    http_rounds = args.http_rounds or (1 if quick else 2)
    duration = args.duration or (1.0 if quick else 3.0)
    names = args.only.split(",") if args.only else list(ASGI_APPS)
    if "bare" not in names:
        names.insert(0, "bare")
    started = time.perf_counter()
    result: dict[str, Any] = {"kind": "main", "quick": quick, "command": command}
    result["started"] = _now()
    result["env"] = environment()

    print("in-process ASGI", file=sys.stderr)
    timings, counts, floors = run_asgi_inprocess(names, run, rounds, seconds)
    result["asgi_inprocess"] = {"rounds": rounds, **vars(timings)}
    result["redis_counts"] = counts
    result["floors"] = floors

    print("in-process WSGI", file=sys.stderr)
    wsgi_timings, wsgi_counts = run_wsgi_inprocess(list(WSGI_APPS), run, rounds, seconds)
    result["wsgi_inprocess"] = {"rounds": rounds, **vars(wsgi_timings)}
    result["wsgi_redis_counts"] = wsgi_counts

    if not args.no_http:
        logs = run.path("logs")
        logs.mkdir(exist_ok=True)
        print("over HTTP: uvicorn + wrk", file=sys.stderr)
        served = {n: ASGI_APPS[n] for n in names if not n.endswith(EXPLICIT)}
        with serving("asgi", served, run, logs) as servers:
            http = measure(servers, ROUTES, http_rounds, duration, "ASGI")
        result["asgi_http"] = {"rounds": http_rounds, "seconds": duration, "results": http}
        print("over HTTP: gunicorn + wrk", file=sys.stderr)
        with serving("wsgi", {n: WSGI_APPS[n] for n in WSGI_HTTP_APPS}, run, logs) as servers:
            http = measure(servers, ROUTES, http_rounds, duration, "WSGI")
        result["wsgi_http"] = {"rounds": http_rounds, "seconds": duration, "results": http}

    result["finished"] = _now()
    result["seconds"] = time.perf_counter() - started
    result["env"]["loadavg_end"] = list(os.getloadavg())
    return result


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "versions": versions,
        "loadavg_start": list(os.getloadavg()),
    }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _dump(path: os.PathLike[str], data: dict[str, Any]) -> None:
    with open(path, "w") as out:
        json.dump(data, out, indent=1)
    print(f"raw results: {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
