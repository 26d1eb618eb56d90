"""One timer per event loop bounds every operation a store has in flight (``Deadlines``).

``asyncio.timeout`` schedules a timer and cancels it on every use, which costs about
5 µs here, a large part of what a Redis load adds to its round trip. A store's
operations all get the same timeout, so each deadline is later than those watched
before it: one armed timer, set for the earliest deadline still watched, checks them
when it fires and is armed again for the next. Watching an operation is then two dict
operations, and a loop that runs sequential requests sees one timer per ``timeout``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class Watch:
    """One operation being watched: its task, its deadline, and whether it expired."""

    __slots__ = ("cancelling", "deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.cancelling = task.cancelling()  # cancellations requested before ours
        self.expired = False


class Deadlines:
    """Cancels the task of a watched operation that outlives ``timeout`` (see the module
    docstring); ``bounded`` turns that into ``TimeoutError``, as ``asyncio.timeout`` does."""

    __slots__ = ("_armed", "_loop", "_watched", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: dict[Watch, None] = {}  # in deadline order: one timeout for all
        self._armed = False

    async def bounded(self, operation: Awaitable[T], expired: Callable[[], Exception]) -> T:
        """Await ``operation``; past the deadline it is cancelled and ``expired()`` raised.
        A cancellation from elsewhere stays a ``CancelledError``."""
        watch = self.watch()
        try:
            result = await operation
        except asyncio.CancelledError:
            if watch.expired and watch.task.uncancel() <= watch.cancelling:
                raise expired() from None
            raise
        finally:
            self.unwatch(watch)
        if watch.expired:  # it finished just as the deadline passed: withdraw the cancel
            watch.task.uncancel()
        return result

    def watch(self) -> Watch:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - operations are awaited inside tasks
            raise RuntimeError("a store operation must run inside an asyncio task")
        if loop is not self._loop:  # first use, or a client moved to another loop
            self._loop, self._watched, self._armed = loop, {}, False
        watch = Watch(task, loop.time() + self.timeout)
        self._watched[watch] = None
        if not self._armed:
            self._armed = True
            loop.call_at(watch.deadline, self._check)
        return watch

    def unwatch(self, watch: Watch) -> None:
        self._watched.pop(watch, None)

    def _check(self) -> None:
        self._armed = False
        loop = self._loop
        assert loop is not None
        now = loop.time()
        for watch in list(self._watched):
            if watch.deadline > now:
                self._armed = True  # the earliest deadline still watched
                loop.call_at(watch.deadline, self._check)
                return
            del self._watched[watch]
            watch.expired = True
            watch.task.cancel()
