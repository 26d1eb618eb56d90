"""``python -m bench.profile APP ROUTE [N]``: where one app's requests spend their time.

Runs N in-process requests of ROUTE against APP (a name of ``apps.ASGI_APPS``), the
client carrying its cookie as in the bench, under pyinstrument, and writes
``results/profiles/APP-ROUTE.txt`` (call tree) and ``.html`` (an interactive flame view).
Profiles of what still misses a target are committed there.
"""

from __future__ import annotations

import asyncio
import sys

from .apps import build_asgi
from .asgi_inprocess import loop_factory
from .cleanup import remove_run
from .config import RESULTS_DIR, Run
from .inprocess import AsgiTimer, Jar

PROFILES = RESULTS_DIR / "profiles"


async def _profile(name: str, route: str, n: int) -> str:
    from pyinstrument import Profiler

    run = Run.new()
    app = build_asgi(name, run)
    try:
        timer = AsgiTimer(app.app, Jar())
        await timer.run("/write", 1)
        carry = route != "nocookie"
        path = "/noop" if route == "nocookie" else route
        await timer.run(path, 200, carry)  # warm: connections, caches, statements
        profiler = Profiler(interval=0.001, async_mode="enabled")
        profiler.start()
        await timer.run(path, n, carry)
        profiler.stop()
    finally:
        await app.aclose()
        remove_run(run)
    PROFILES.mkdir(parents=True, exist_ok=True)
    stem = PROFILES / f"{name}-{route.strip('/')}"
    stem.with_suffix(".html").write_text(profiler.output_html())
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    stem.with_suffix(".txt").write_text(text)
    return str(stem)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    name, route = argv[0], argv[1]
    n = int(argv[2]) if len(argv) == 3 else 5000
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        stem = runner.run(_profile(name, route, n))
    print(f"wrote {stem}.txt and .html")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
