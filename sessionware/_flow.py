"""Store operations as typed values, and the one pair of runners that performs them.

Logic that needs a store is written once, as a generator (a *flow*) that yields the
operation it wants done and receives its result, httpx's ``auth_flow`` pattern:
``run_sync`` drives a flow with a store's sync methods (WSGI, command line),
``run_async`` with their async twins (ASGI). A store's ``SessionError`` (an outage, a value
too large) is thrown into the flow at the ``yield`` that asked for it, so a flow may handle
it or let it propagate.

Each operation is a class with its result type, and a flow asks for one through
``perform``, so mypy checks both the call and what comes back::

    record = yield from perform(Load(key, now))     # record: Loaded
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from . import _observe
from ._errors import SessionError
from ._records import Change, Loaded, Record
from ._store import SessionStore, Written

R = TypeVar("R")
T = TypeVar("T")


class Op(Generic[R]):
    """One store operation; ``call``/``acall`` perform it on a store."""

    __slots__ = ()

    def target(self, store: SessionStore) -> tuple[str, SessionStore]:
        """The operation's name and the store it runs on (for tracing)."""
        return type(self).__name__.lower(), store

    def call(self, store: SessionStore) -> R:
        raise NotImplementedError

    async def acall(self, store: SessionStore) -> R:
        raise NotImplementedError


Flow = Generator[Op[Any], Any, T]


def perform(op: Op[R]) -> Generator[Op[R], R, R]:
    """``result = yield from perform(op)``: the typed way for a flow to ask for ``op``."""
    result = yield op
    return result


@dataclass(slots=True)
class Load(Op[Loaded]):
    key: str
    now: float

    def call(self, store: SessionStore) -> Loaded:
        return store.load(self.key, self.now)

    async def acall(self, store: SessionStore) -> Loaded:
        return await store.aload(self.key, self.now)


@dataclass(slots=True)
class Insert(Op[bool]):
    key: str
    record: Record

    def call(self, store: SessionStore) -> bool:
        return store.insert(self.key, self.record)

    async def acall(self, store: SessionStore) -> bool:
        return await store.ainsert(self.key, self.record)


@dataclass(slots=True)
class Update(Op[Written]):
    key: str
    change: Change
    now: float

    def call(self, store: SessionStore) -> Written:
        return store.update(self.key, self.change, self.now)

    async def acall(self, store: SessionStore) -> Written:
        return await store.aupdate(self.key, self.change, self.now)


@dataclass(slots=True)
class Delete(Op[Written]):
    key: str
    now: float
    stale_until: float

    def call(self, store: SessionStore) -> Written:
        return store.delete(self.key, self.now, self.stale_until)

    async def acall(self, store: SessionStore) -> Written:
        return await store.adelete(self.key, self.now, self.stale_until)


@dataclass(slots=True)
class Rotate(Op[Written]):
    key: str
    new_key: str
    record: Record
    now: float
    stale_until: float

    def call(self, store: SessionStore) -> Written:
        return store.rotate(self.key, self.new_key, self.record, self.now, self.stale_until)

    async def acall(self, store: SessionStore) -> Written:
        return await store.arotate(self.key, self.new_key, self.record, self.now, self.stale_until)


@dataclass(slots=True)
class Renew(Op[Written]):
    key: str
    new_key: str
    now: float
    grace_until: float

    def call(self, store: SessionStore) -> Written:
        return store.renew(self.key, self.new_key, self.now, self.grace_until)

    async def acall(self, store: SessionStore) -> Written:
        return await store.arenew(self.key, self.new_key, self.now, self.grace_until)


@dataclass(slots=True)
class Via(Op[R]):
    """``op`` performed on another store than the runner's (a component of a composite
    store, such as ``CachedStore``'s cache)."""

    store: SessionStore
    op: Op[R]

    def target(self, store: SessionStore) -> tuple[str, SessionStore]:
        return self.op.target(self.store)

    def call(self, store: SessionStore) -> R:
        return self.op.call(self.store)

    async def acall(self, store: SessionStore) -> R:
        return await self.op.acall(self.store)


S = TypeVar("S")


def drive(
    flow: Generator[S, Any, T],
    perform: Callable[[S], Any],
    thrown: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``flow``: each step it yields is answered with ``perform(step)``; an exception
    of a ``thrown`` type that ``perform`` raises is thrown into the flow at that step.

    The one engine of every flow here: the lifecycle's store operations (``run_sync``)
    and the stores' own steps (a Lua script, a SQL statement, a Memcached command).
    """
    try:
        step = next(flow)
        while True:
            try:
                result = perform(step)
            except thrown as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


async def adrive(
    flow: Generator[S, Any, T],
    perform: Callable[[S], Awaitable[Any]],
    thrown: tuple[type[BaseException], ...] = (),
) -> T:
    """``drive`` with an async ``perform``."""
    try:
        step = next(flow)
        while True:
            try:
                result = await perform(step)
            except thrown as exc:
                step = flow.throw(exc)
            else:
                step = flow.send(result)
    except StopIteration as done:
        value: T = done.value
        return value


_THROWN = (SessionError,)


def run_sync(flow: Flow[T], store: SessionStore) -> T:
    """Drive ``flow`` with the store's sync methods; store errors are thrown into it."""
    tracer = _observe.tracer()
    if tracer is None:
        return drive(flow, partial(_call, store=store), _THROWN)
    return drive(flow, partial(_traced_call, tracer, store=store), _THROWN)


async def run_async(flow: Flow[T], store: SessionStore) -> T:
    """Drive ``flow`` with the store's async twins; store errors are thrown into it."""
    tracer = _observe.tracer()
    if tracer is None:
        return await adrive(flow, partial(_acall, store=store), _THROWN)
    return await adrive(flow, partial(_traced_acall, tracer, store=store), _THROWN)


def _call(op: Op[R], store: SessionStore) -> R:
    return op.call(store)


def _acall(op: Op[R], store: SessionStore) -> Awaitable[R]:
    return op.acall(store)


def _traced_call(tracer: Any, op: Op[R], store: SessionStore) -> R:
    name, target = op.target(store)
    with tracer.start_as_current_span(f"sessionware.store.{name}") as span:
        span.set_attribute("sessionware.store", type(target).__name__)
        try:
            result = op.call(store)
        except SessionError as exc:
            span.set_attribute("sessionware.result", type(exc).__name__)
            raise
        span.set_attribute("sessionware.result", _observe.result_name(result))
        return result


async def _traced_acall(tracer: Any, op: Op[R], store: SessionStore) -> R:
    name, target = op.target(store)
    with tracer.start_as_current_span(f"sessionware.store.{name}") as span:
        span.set_attribute("sessionware.store", type(target).__name__)
        try:
            result = await op.acall(store)
        except SessionError as exc:
            span.set_attribute("sessionware.result", type(exc).__name__)
            raise
        span.set_attribute("sessionware.result", _observe.result_name(result))
        return result
