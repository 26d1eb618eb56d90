"""The Memcached commands MemcachedStore's flows ask for, and what every flow shares.

A flow is a generator that yields the command it needs and receives the reply (httpx's
``auth_flow`` pattern): ``_memcached_io`` performs the commands on a sync or an async
client, so each operation is written once for both.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from .._errors import SessionStoreError
from .._records import Record
from ._memcached_layout import (
    ITEM_OVERHEAD,
    check_size,
    encode_record,
    new_generation,
    session_name,
)

T = TypeVar("T")

#: How many times a write reads again after a ``cas`` the server refused.
ATTEMPTS = 40
_BACKOFF_FIRST, _BACKOFF_MOST = 0.0005, 0.05
_SAMPLE_GENERATION = new_generation()


# -- the commands a flow asks for -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Get:
    """The item's value, or ``None``."""

    name: bytes


@dataclass(frozen=True, slots=True)
class Gets:
    """``(value, cas token)``, or ``None``."""

    name: bytes


@dataclass(frozen=True, slots=True)
class GetMany:
    """``{name: value}`` of the items that exist."""

    names: list[bytes]


@dataclass(frozen=True, slots=True)
class GetsMany:
    """``{name: (value, cas token)}`` of the items that exist (sweeps, sync only)."""

    names: list[bytes]


@dataclass(frozen=True, slots=True)
class Add:
    """Store only if no item exists; whether it was stored."""

    name: bytes
    value: bytes
    exptime: int


@dataclass(frozen=True, slots=True)
class Cas:
    """Store only if the item is unchanged since ``token``; whether it was stored."""

    name: bytes
    value: bytes
    exptime: int
    token: int


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the item; whether there was one."""

    name: bytes


@dataclass(frozen=True, slots=True)
class DeleteIf:
    """Remove the item if unchanged since ``token`` (sweeps, sync only)."""

    name: bytes
    token: int


@dataclass(frozen=True, slots=True)
class Pause:
    """Sleep before trying again."""

    seconds: float


Step = Get | Gets | GetMany | GetsMany | Add | Cas | Delete | DeleteIf | Pause
Flow = Generator[Step, Any, T]


def ask(step: Step) -> Flow[Any]:
    """``reply = yield from ask(step)``."""
    return (yield step)


class FlowsBase:
    """What every flow of one store knows: its prefix, its item size limit, its patience."""

    __slots__ = ("attempts", "max_item_bytes", "prefix")

    def __init__(self, prefix: bytes, max_item_bytes: int, attempts: int = ATTEMPTS) -> None:
        self.prefix = prefix
        self.max_item_bytes = max_item_bytes
        self.attempts = attempts

    def name(self, key: str) -> bytes:
        return session_name(self.prefix, key)

    def check(self, name: bytes, record: Record, blob: bytes) -> None:
        """Refuse a record too large for one item, before anything is written."""
        generation = None if record.user is None else _SAMPLE_GENERATION
        header = encode_record(record, generation, b"")
        check_size(len(name) + len(header) + len(blob) + ITEM_OVERHEAD, self.max_item_bytes)

    def pause(self, attempt: int) -> Flow[None]:
        longest = min(_BACKOFF_MOST, _BACKOFF_FIRST * 2**attempt)
        yield Pause(random.uniform(0, longest))

    def gave_up(self, operation: str) -> SessionStoreError:
        return SessionStoreError(
            f"Memcached session store failed in {operation}: the item kept changing "
            f"under {self.attempts} attempts"
        )
