"""``Deadlines``: one timer per loop bounds every operation in flight, as ``asyncio.timeout``
would bound each (what RedisStore's loads and writes rely on)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sessionware.stores._deadlines import Deadlines


class Expired(Exception):
    pass


async def _sleep_then(value: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return value


def test_an_operation_past_its_deadline_is_cancelled_and_reported_expired() -> None:
    async def main() -> float:
        deadlines = Deadlines(0.05)
        started = time.monotonic()
        with pytest.raises(Expired):
            await deadlines.bounded(_sleep_then("late", 5.0), Expired)
        return time.monotonic() - started

    took = asyncio.run(main())
    assert 0.05 <= took < 1.0


def test_operations_within_their_deadline_return_and_leave_nothing_watched() -> None:
    async def main() -> None:
        deadlines = Deadlines(5.0)
        results = [await deadlines.bounded(_sleep_then(str(n), 0), Expired) for n in range(50)]
        assert results == [str(n) for n in range(50)]
        assert not deadlines._watched
        # One timer serves all fifty (asyncio.timeout would have scheduled fifty).
        scheduled = asyncio.get_running_loop()._scheduled  # type: ignore[attr-defined]
        assert len(scheduled) == 1

    asyncio.run(main())


def test_each_of_many_concurrent_operations_gets_its_own_deadline() -> None:
    async def main() -> list[str]:
        deadlines = Deadlines(0.2)

        async def one(n: int) -> str:
            await asyncio.sleep(n * 0.02)  # staggered starts: staggered deadlines
            try:
                return await deadlines.bounded(_sleep_then("ok", 0.1 if n % 2 else 5.0), Expired)
            except Expired:
                return "expired"

        return await asyncio.gather(*(one(n) for n in range(8)))

    assert asyncio.run(main()) == ["expired", "ok"] * 4


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    async def main() -> None:
        deadlines = Deadlines(5.0)
        task = asyncio.create_task(deadlines.bounded(_sleep_then("x", 5.0), Expired))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines._watched

    asyncio.run(main())


def test_the_timer_keeps_working_on_a_new_event_loop() -> None:
    deadlines = Deadlines(0.05)

    async def late() -> None:
        with pytest.raises(Expired):
            await deadlines.bounded(_sleep_then("late", 5.0), Expired)

    asyncio.run(late())
    asyncio.run(late())  # the first loop's timer is gone with it: a new one is armed
