"""The PNG chart of one main run: overheads in-process and throughput over HTTP."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from .tables import ordered, overheads

CELLS = ("noop-nocookie", "noop", "read", "write")
ROUTES = ("noop", "read", "write")
COLORS = {"noop-nocookie": "#bbbbbb", "noop": "#6baed6", "read": "#2171b5", "write": "#fd8d3c"}


def draw(main: dict[str, Any], path: Path) -> None:
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]

    panels = [("asgi_inprocess", "bare", "ASGI in-process: overhead over the bare app (µs, log)")]
    if "asgi_http" in main:
        panels.append(("asgi_http", "bare", "ASGI over HTTP, uvicorn: requests/s"))
    panels.append(
        ("wsgi_inprocess", "flask-bare", "WSGI in-process: overhead over bare Flask (µs, log)")
    )
    if "wsgi_http" in main:
        panels.append(("wsgi_http", "flask-bare", "WSGI over HTTP, gunicorn: requests/s"))
    heights = [len(main[key].get("samples", main[key].get("results", {}))) for key, _, _ in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(11, 0.42 * sum(heights) + 1.6 * len(panels)),
        gridspec_kw={"height_ratios": heights},
    )
    for ax, (key, bare, title) in zip(axes, panels, strict=True):
        if key.endswith("inprocess"):
            _overhead_panel(ax, main[key], bare)
        else:
            _rps_panel(ax, main[key]["results"])
        ax.set_title(title, loc="left", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.suptitle(f"sessionware vs peers, run {main['started']}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _overhead_panel(ax: Any, block: dict[str, Any], bare: str) -> None:
    over = overheads(block, bare)
    apps = [a for a in ordered(over) if a != bare][::-1]
    width = 0.8 / len(CELLS)
    for index, cell in enumerate(CELLS):
        # Log scale: an overhead within noise of zero (or below) is drawn at 0.5 µs.
        values = [max(0.5, over[a].get(cell, 0.0)) for a in apps]  # 0: not measured
        positions = [i + (index - 1.5) * width for i in range(len(apps))]
        ax.barh(positions, values, height=width, color=COLORS[cell], label=cell)
    ax.set_xscale("log")
    _ticks(ax, apps)


def _rps_panel(ax: Any, results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    apps = ordered(results)[::-1]
    width = 0.8 / len(ROUTES)
    for index, route in enumerate(ROUTES):
        values = [statistics.median(r["rps"] for r in results[a][route]) for a in apps]
        positions = [i + (index - 1) * width for i in range(len(apps))]
        ax.barh(positions, values, height=width, color=COLORS[route], label=route)
    _ticks(ax, apps)


def _ticks(ax: Any, apps: list[str]) -> None:
    """App names on the y axis, sessionware's in bold."""
    ax.set_yticks(range(len(apps)), apps, fontsize=8)
    for label in ax.get_yticklabels():
        if label.get_text().startswith("sessionware"):
            label.set_fontweight("bold")
