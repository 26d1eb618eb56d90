"""The drills' section of docs/scale.md: a table of figures per drill, and how to get them
again."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

START, END = "<!-- drills:start -->", "<!-- drills:end -->"


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _window(figures: dict[str, Any]) -> str:
    window = figures["window"]
    if window is None:
        return "none"
    first, last = window
    return f"{last - first:.1f} s ({first:+.1f} → {last:+.1f})"


def _lockouts(figures: dict[str, Any]) -> str:
    spans = figures["lockouts"]
    if not spans:
        return "0"
    return f"**{len(spans)}**, {max(spans):.1f} s ({figures['logins_not_taken']} tries)"


#: (column heading, how a drill's figures fill its cell); the legend explains each.
COLUMNS: list[tuple[str, Any]] = [
    (
        "200 / 401 / 503 / 500",
        lambda f: (
            f"{f['statuses'].get('200', 0):,} / {f['status_401']} / "
            f"{f['status_503']:,} / {f['status_500']}"
        ),
    ),
    (
        "other",
        lambda f: str(
            f["requests"] - sum(f["statuses"].get(k, 0) for k in ("200", "401", "503", "500"))
        ),
    ),
    ("error window", _window),
    ("slowest", lambda f: f"{f['slowest']:.2f} s"),
    ("> timeout", lambda f: str(f["over_timeout"])),
    ("before", lambda f: f"{f['baseline_rps']:,.0f}/s"),
    ("recovered", lambda f: _seconds(f["recovered_after"])),
    (
        "writes acked / lost",
        lambda f: (
            f"{f['acknowledged']:,} / **{f['lost']}**"
            + (f" ({f['unverified']} unverified)" if f["unverified"] else "")
        ),
    ),
    ("logouts / came back", lambda f: f"{f['logged_out']:,} / **{f['came_back']}**"),
    ("locked out", _lockouts),
]

LEGEND = """\
Columns: the requests answered 200, 401 (a write whose session had vanished), 503 and
500; other failures (requests that hung past 30 s or broke the connection); the error
window, from the first to the last failed request, in seconds after the fault; the
slowest request; requests slower than the store's timeout (1 s) + 0.5 s; the throughput
before the fault; when it was back to 80 % of that for a running second (after the link
came back, for a partition); the session writes answered 200 and those missing when the
user read its session back; the logouts answered 200 and those whose session showed
data again afterwards; the users whose login answered 200 but did not take, with the
longest such spell (see "Locked out" above)."""


def render_section(
    drills: list[dict[str, Any]], refused: dict[str, str], command: str, stamp: str
) -> str:
    lines = [
        START,
        f"Measured {stamp} on {platform.node()} ({platform.machine()}, Python "
        f"{platform.python_version()}), command `{command}` (the raw data of every request "
        "is kept in bench/results/raw/).",
        "",
    ]
    if drills:
        lines += ["| drill | " + " | ".join(heading for heading, _ in COLUMNS) + " |"]
        lines += ["| --- | " + " | ".join("---:" for _ in COLUMNS) + " |"]
        for drill in drills:
            cells = " | ".join(cell(drill["figures"]) for _, cell in COLUMNS)
            lines += [f"| `{drill['name']}` | {cells} |"]
        lines += ["", LEGEND, "", "![drills](scale.png)", ""]
        for drill in drills:
            events = ", ".join(
                f"{name} {at:+.1f} s" for name, at in drill["figures"]["events"].items()
            )
            lines += [f"- `{drill['name']}`: {drill['title']} ({events})."]
    for name, reason in refused.items():
        lines += [f"- `{name}`: **not run**, this machine refused it: `{reason}`"]
    lines += ["", END]
    return "\n".join(lines)


def replace_section(path: Path, section: str) -> None:
    """Put ``section`` between the markers of ``path`` (or at its end, the first time)."""
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
