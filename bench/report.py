"""Turn the newest raw results into bench/results/latest.md (or quick.md), a PNG chart,
and the results section of bench/README.md."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

from .config import BENCH_DIR, RAW_DIR, RESULTS_DIR
from .tables import (
    CELL_TITLES,
    HTTP_ROUTES,
    LABELS,
    median_table,
    ordered,
    overheads,
    p99_table,
    rps_table,
)
from .targets import TIMES, Check, evaluate, flatness

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
SCALE_START = "<!-- scale:start -->"
SCALE_END = "<!-- scale:end -->"


def newest(prefix: str) -> dict[str, Any] | None:
    """The newest raw result whose file name starts with ``prefix-`` and a timestamp."""
    pattern = re.compile(rf"{re.escape(prefix)}-\d{{8}}T\d{{6}}Z\.json")
    files = sorted(p for p in RAW_DIR.glob(f"{prefix}-*.json") if pattern.fullmatch(p.name))
    if not files:
        return None
    loaded: dict[str, Any] = json.loads(files[-1].read_text())
    loaded["_file"] = files[-1].name
    return loaded


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def inprocess_section(block: dict[str, Any], bare: str, title: str, cpu: bool = False) -> list[str]:
    medians = median_table(block["cpu_samples" if cpu else "samples"])
    over = overheads(block, bare, cpu)
    cells = [c for c in CELL_TITLES if c in medians[bare]]
    what = (
        "CPU time of the calling thread per request (µs)" if cpu else "µs per request (wall clock)"
    )
    lines = [
        f"### {title}",
        "",
        f"{what}, median of {block['rounds']} interleaved rounds; in brackets the "
        f"overhead over the {LABELS[bare].split(' (')[0]}, the middleware's own cost"
        + (
            ": the median of per-round differences, each cell measured right after the "
            "bare app's same route."
            if not cpu and "overheads" in block
            else "."
        ),
        "",
        _row(["app", *(CELL_TITLES[c] for c in cells)]),
        _row(["---", *("---:" for _ in cells)]),
    ]
    for app, row in medians.items():
        values = [
            "—"
            if c not in row
            else _fmt(row[c])
            if app == bare
            else f"{_fmt(row[c])} (+{_fmt(over[app][c])})"
            for c in cells
        ]
        lines.append(_row([LABELS.get(app, app), *values]))
    return [*lines, ""]


def floors_section(main: dict[str, Any]) -> list[str]:
    """The raw round trips, and each server-side store's overhead beyond them."""
    from .floors import FLOORS
    from .targets import beyond_floor

    floors = main.get("floors")
    if not floors:
        return []
    lines = [
        "### Floors: the raw round trips, and sessionware beyond them",
        "",
        "Each floor is what a request cannot avoid, done with the bare client the store uses "
        "(same settings), timed in the same rounds as the table above: µs per operation, "
        "median of rounds.",
        "",
        _row(["floor", "µs"]),
        _row(["---", "---:"]),
    ]
    for name, title in FLOORS.items():
        if name in floors["samples"]:
            lines.append(_row([title, _fmt(statistics.median(floors["samples"][name]))]))
        elif name in floors.get("skipped", {}):
            lines.append(_row([title, f"not measured: {floors['skipped'][name]}"]))
    beyond = beyond_floor(main)
    if beyond:
        lines += [
            "",
            "sessionware's overhead over the bare app minus the floor of its route (/noop and "
            "/read: one read; /write: a read and a write): what the middleware and the store "
            "add beyond the client's own round trips. µs.",
            "",
            _row(["store", "/noop", "/read", "/write"]),
            _row(["---", "---:", "---:", "---:"]),
        ]
        for app, cells in beyond.items():
            lines.append(
                _row(
                    [LABELS.get(app, app), *(f"{cells[c]:+.1f}" for c in ("noop", "read", "write"))]
                )
            )
    return [*lines, ""]


def http_section(block: dict[str, Any], bare: str, title: str, server: str) -> list[str]:
    rps = rps_table(block["results"])
    p99 = p99_table(block["results"])
    routes = HTTP_ROUTES
    lines = [
        f"### {title}",
        "",
        f"{server}; `wrk -t1 -c16 -d{block['seconds']:g}s`, 16 session cookies sent in turn; "
        f"requests/s, median of {block['rounds']} interleaved round(s); in brackets the share "
        "of the bare app's throughput, then the p99 latency.",
        "",
        _row(["app", *(f"/{r}" for r in routes)]),
        _row(["---", *("---:" for _ in routes)]),
    ]
    for app, row in rps.items():
        values = [
            f"{row[r]:,.0f} ({row[r] / rps[bare][r]:.2f}{TIMES}, {p99[app][r]:.1f} ms)"
            for r in routes
        ]
        lines.append(_row([LABELS.get(app, app), *values]))
    return [*lines, ""]


def counts_section(counts: dict[str, dict[str, dict[str, Any]]], title: str) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "Per request, from `MONITOR` filtered to each app's own key prefix (100 requests per "
        "cell). A round trip is one command the client sent; `lua:` commands ran inside a "
        "script, in the same round trip. Writing round trips changed data.",
        "",
        _row(["app", "route", "round trips", "writing round trips", "commands"]),
        _row(["---", "---", "---:", "---:", "---"]),
    ]
    for app in ordered(counts):
        for cell in CELL_TITLES:
            c = counts[app][cell]
            commands = ", ".join(f"{n} {k:g}" for n, k in c["commands"].items()) or "none"
            lines.append(
                _row(
                    [
                        LABELS.get(app, app),
                        CELL_TITLES.get(cell, cell),
                        f"{c['round_trips']:g}",
                        f"{c['writes']:g}",
                        commands,
                    ]
                )
            )
    return [*lines, ""]


def targets_section(checks: list[Check]) -> list[str]:
    lines = [
        "### Targets",
        "",
        "Ratios measured in this run (overhead = app minus bare, in-process, median of rounds).",
        "",
        _row(["target", "measured", "status"]),
        _row(["---", "---", "---"]),
    ]
    for check in checks:
        status = {True: "met", False: "**missed**", None: "not measured"}[check.ok]
        lines.append(_row([check.target, check.measured, status]))
    return [*lines, ""]


def scale_section(scale: dict[str, Any]) -> list[str]:
    lines = [
        f"## Scale ({'quick, ' if scale.get('quick') else ''}run {scale['started']}, "
        f"{scale['seconds'] / 60:.1f} min)",
        "",
        f"Store latency through the sync API, one call at a time on random keys, "
        f"{scale['samples']:,} samples per operation and size; populated in bulk with each "
        "store's own encoding. µs, p50 / p99.",
        "",
    ]
    sizes = [str(s) for s in scale["sizes"]]
    lines += [
        _row(
            [
                "store",
                "operation",
                *(f"{int(s):,} sessions" for s in sizes),
                "largest / smallest (p50)",
            ]
        ),
        _row(["---", "---", *("---:" for _ in sizes), "---:"]),
    ]
    for kind, by_size in scale["growth"].items():
        for op in ("load", "update", "create"):
            stats = [by_size[s][op] for s in sizes]
            ratio = stats[-1]["p50_us"] / stats[0]["p50_us"]
            lines.append(
                _row(
                    [
                        kind,
                        op,
                        *(f"{_fmt(x['p50_us'])} / {_fmt(x['p99_us'])}" for x in stats),
                        f"{ratio:.2f}{TIMES}",
                    ]
                )
            )
    lines += [
        "",
        "`clear_expired()` on expired sessions, run in its own process (as the "
        "`sessionware clear-expired` command), while this process alternately loads and "
        "updates 1,000 live sessions; latencies in ms, p99 / worst. Redis expires its keys "
        "itself: its purge removes records whose TTL was lost, so those are what it gets. "
        "A probe thread sleeping 1 ms at a time shows when the whole process stalled (the "
        "machine is shared); *store-caused* is the worst request the probe does not explain.",
        "",
        _row(
            [
                "store",
                "removed",
                "clear_expired",
                "load, idle",
                "load, during",
                "update, idle",
                "update, during",
                "store-caused worst",
                "process stalls > 20 ms",
            ]
        ),
        _row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
    ]

    def ms(stats: dict[str, float]) -> str:
        return f"{stats['p99_us'] / 1000:.1f} / {stats['max_us'] / 1000:.1f}"

    for kind, purge in scale["purge"].items():
        during = purge["during"]
        if purge.get("clear_s") is None:
            took = f"stopped after {purge['timed_out_s']:.0f} s"
            removed = "?"
        else:
            took = f"{purge['clear_s']:.1f} s"
            removed = f"{purge['removed']:,} of {purge['expired']:,}"
        probe = during.get("probe", {})
        worst_probe = max((w["ms"] for w in probe.get("worst", [])), default=0.0)
        lines.append(
            _row(
                [
                    kind,
                    removed,
                    took,
                    ms(purge["baseline"]["load"]),
                    ms(during["load"]),
                    ms(purge["baseline"]["update"]),
                    ms(during["update"]),
                    f"{during.get('worst_unexplained_ms', float('nan')):.0f} ms",
                    f"{probe.get('stalls_over_20ms', 0)} (worst {worst_probe:.0f} ms)",
                ]
            )
        )
    memory = scale["memory"]
    lines += [
        "",
        f"`MemoryStore(max_entries={memory['max_entries']:,})` while {memory['total']:,} "
        "distinct sessions are created (traced Python memory and process RSS):",
        "",
        _row(["created", "stored", "traced MiB", "bytes per session", "RSS MiB"]),
        _row(["---:", "---:", "---:", "---:", "---:"]),
    ]
    for sample in memory["samples"]:
        lines.append(
            _row(
                [
                    f"{sample['created']:,}",
                    f"{sample['entries']:,}",
                    f"{sample['traced_bytes'] / 2**20:.1f}",
                    f"{sample['bytes_per_session']:,.0f}",
                    f"{sample['rss_bytes'] / 2**20:.0f}",
                ]
            )
        )
    flat = flatness(memory)
    if flat is not None:
        lines += [
            "",
            f"Largest / smallest traced memory while evicting (more created than "
            f"`max_entries`): {flat:.3f}{TIMES}.",
        ]
    return [*lines, ""]


def environment_lines(main: dict[str, Any]) -> list[str]:
    env = main["env"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    load = env["loadavg_start"][0], env.get("loadavg_end", [float("nan")])[0]
    return [
        f"Run {main['started']} ({main['seconds'] / 60:.1f} min), Python {env['python']}, "
        f"{env['cpus']} cores, load average {load[0]:.1f} at the start and {load[1]:.1f} "
        "at the end (other work on the machine inflates absolute numbers; interleaved "
        "rounds keep the ratios comparable).",
        "",
        f"Versions: {versions}.",
        "",
    ]


def main_sections(main: dict[str, Any]) -> list[str]:
    lines = [*environment_lines(main), "## ASGI", ""]
    lines += targets_section(evaluate(main, newest("scale")))
    lines += inprocess_section(main["asgi_inprocess"], "bare", "In-process (direct ASGI calls)")
    lines += floors_section(main)
    if "cpu_samples" in main["asgi_inprocess"]:
        lines += inprocess_section(
            main["asgi_inprocess"], "bare", "In-process, CPU time (a cross-check)", cpu=True
        )
        lines += [
            "CPU time leaves out waiting for the CPU on a busy machine, and also waiting for "
            "a server's reply: compare the memory and cookie stores on it, not the others.",
            "",
        ]
    if "asgi_http" in main:
        lines += http_section(main["asgi_http"], "bare", "Over HTTP", "uvicorn, 1 worker")
    lines += counts_section(main["redis_counts"], "Redis commands per request (ASGI)")
    lines += ["## WSGI", ""]
    lines += inprocess_section(
        main["wsgi_inprocess"], "flask-bare", "In-process (direct WSGI calls, Flask app)"
    )
    if "wsgi_http" in main:
        lines += http_section(
            main["wsgi_http"], "flask-bare", "Over HTTP", "gunicorn, 1 worker, gthread, 16 threads"
        )
    lines += counts_section(main["wsgi_redis_counts"], "Redis commands per request (WSGI)")
    return lines


def write_reports(quick: bool) -> list[Path]:
    tag = "-quick" if quick else ""
    main = newest(f"main{tag}")
    scale = newest(f"scale{tag}")
    name = "quick" if quick else "latest"
    out = RESULTS_DIR / f"{name}.md"
    previous = out.read_text() if out.exists() else ""
    lines = [
        f"# sessionware benchmarks: {name} results",
        "",
        "Written by `bash bench/run` (see bench/README.md); "
        + (
            "a short smoke run, not for comparison."
            if quick
            else "the numbers quoted in the README."
        ),
        "",
    ]
    if main is not None:
        lines += [f"Command: `{main['command']}`; raw data: `results/raw/{main['_file']}`.", ""]
        lines += main_sections(main)
    lines.append(SCALE_START)
    if scale is not None:
        lines += [f"Command: `{scale['command']}`; raw data: `results/raw/{scale['_file']}`.", ""]
        lines += scale_section(scale)
    else:
        kept = _between(previous, SCALE_START, SCALE_END)
        lines += (
            [kept] if kept else ["## Scale", "", "Not run yet: `bash bench/run --scale-only`.", ""]
        )
    lines.append(SCALE_END)
    out.write_text("\n".join(lines).rstrip() + "\n")
    written = [out]
    if main is not None:
        from .chart import draw

        chart = RESULTS_DIR / f"{name}.png"
        draw(main, chart)
        written.append(chart)
    if not quick and main is not None:
        readme = BENCH_DIR / "README.md"
        block = _readme_block(main, "results/", with_http=True)
        readme.write_text(_replace_between(readme.read_text(), README_START, README_END, block))
        written.append(readme)
        # The project README shows the same targets and in-process table.
        top = BENCH_DIR.parent / "README.md"
        block = _readme_block(main, "bench/results/", with_http=False)
        top.write_text(_replace_between(top.read_text(), README_START, README_END, block))
        written.append(top)
    return written


def _readme_block(main: dict[str, Any], results: str, with_http: bool) -> str:
    http = []
    if with_http and "asgi_http" in main:
        http = http_section(main["asgi_http"], "bare", "Over HTTP", "uvicorn, 1 worker")
    return "\n".join(
        [
            README_START,
            f"Latest run: {main['started']}, command `{main['command']}`. Full tables, HTTP, "
            f"WSGI and scale: [{results}latest.md]({results}latest.md).",
            "",
            *targets_section(evaluate(main, newest("scale"))),
            *inprocess_section(main["asgi_inprocess"], "bare", "In-process (ASGI)"),
            *http,
            f"![chart]({results}latest.png)",
            README_END,
        ]
    )


def _between(text: str, start: str, end: str) -> str:
    if start in text and end in text:
        return text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    return ""


def _replace_between(text: str, start: str, end: str, block: str) -> str:
    if start in text and end in text:
        head = text.split(start, 1)[0]
        tail = text.split(end, 1)[1]
        return head + block + tail
    return text.rstrip() + "\n\n" + block + "\n"
