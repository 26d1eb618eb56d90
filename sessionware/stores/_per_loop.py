"""One async resource per running asyncio event loop, closed when that loop shuts down.

Native asyncio clients (``redis.asyncio``, async database pools) are bound to the loop
that first used them: reused under another loop they fail ("Event loop is closed") and
leak their sockets. A store is often used by several loops in turn (each pytest test runs
its own; a uvicorn server has its own beside a command line), so it keeps one resource
per loop.

Each resource is closed on its own loop, while its sockets can still be closed cleanly:
a small async generator is registered with the loop, and ``asyncio.run()`` and every
``asyncio.Runner`` (so pytest, uvicorn) finalize async generators before closing the loop.
A loop closed without that (``loop.close()`` by hand) leaves its resource to the garbage
collector.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

logger = logging.getLogger("sessionware")


class PerLoop(Generic[T]):
    """``await get()`` gives the running loop's resource, opening it on first use."""

    def __init__(self, open_: Callable[[], T], close: Callable[[T], Awaitable[None]]) -> None:
        self._open = open_
        self._close = close
        self._items: dict[asyncio.AbstractEventLoop, tuple[T, AsyncGenerator[None, None]]] = {}
        self._lock = threading.Lock()
        self._closing: set[concurrent.futures.Future[None]] = set()

    async def get(self) -> T | None:
        """The resource of the running loop; ``None`` when the running library is not asyncio."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # trio, or anything else anyio runs on
            return None
        entry = self._items.get(loop)
        if entry is not None:
            return entry[0]
        item = self._open()
        keeper = self._keep(loop, item)
        with self._lock:
            self._items = {lp: e for lp, e in self._items.items() if not lp.is_closed()}
            self._items[loop] = (item, keeper)
        await keeper.asend(None)  # first iteration registers it with the loop
        return item

    async def _keep(self, loop: asyncio.AbstractEventLoop, item: T) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                if self._items.get(loop, (None,))[0] is item:
                    del self._items[loop]
            try:
                await self._close(item)
            except Exception as exc:  # the loop is shutting down: report, do not raise there
                logger.debug("sessionware: closing an async client failed: %r", exc)

    async def aclose(self) -> None:
        """Close the running loop's resource now and release the others (see ``release``)."""
        try:
            entry = self._items.get(asyncio.get_running_loop())
        except RuntimeError:
            entry = None
        if entry is not None:
            await entry[1].aclose()
        self.release()

    def release(self) -> None:
        """Close the resources of loops running now, on those loops; a loop that is idle
        closes its own when it shuts down. Later ``get`` calls open new ones."""
        with self._lock:
            entries = list(self._items.items())
        for loop, (_, keeper) in entries:
            if loop.is_running():
                future = asyncio.run_coroutine_threadsafe(_finish(keeper), loop)
                self._closing.add(future)
                future.add_done_callback(self._closing.discard)


async def _finish(keeper: AsyncGenerator[None, None]) -> None:
    await keeper.aclose()
