"""Store calls as values, and the two tiny runners that perform them (sync and async).

The lifecycle is written once as generators that *yield* the store call they need and
*receive* its result; WSGI drives them with ``run_sync``, ASGI with ``run_async``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

from ._records import Change, Record
from .stores.base import SessionStore

T = TypeVar("T")


class StoreCall(NamedTuple):
    """One store operation: the sync method's name, its async twin's, and the arguments."""

    method: str
    amethod: str
    args: tuple[Any, ...]


Flow = Generator[StoreCall, Any, T]


def load(key: str, now: float) -> StoreCall:
    return StoreCall("load", "aload", (key, now))


def create(key: str, record: Record) -> StoreCall:
    return StoreCall("create", "acreate", (key, record))


def update(key: str, change: Change, now: float) -> StoreCall:
    return StoreCall("update", "aupdate", (key, change, now))


def delete(key: str) -> StoreCall:
    return StoreCall("delete", "adelete", (key,))


def run_sync(flow: Flow[T], store: SessionStore | None) -> T:
    """Drive ``flow`` with the store's sync methods."""
    try:
        call = next(flow)
        while True:
            call = flow.send(getattr(store, call.method)(*call.args))
    except StopIteration as done:
        result: T = done.value
        return result


async def run_async(flow: Flow[T], store: SessionStore | None) -> T:
    """Drive ``flow`` with the store's async twins."""
    try:
        call = next(flow)
        while True:
            call = flow.send(await getattr(store, call.amethod)(*call.args))
    except StopIteration as done:
        result: T = done.value
        return result
