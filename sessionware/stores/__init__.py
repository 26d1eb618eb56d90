"""The stores. Each is imported on first use, so optional drivers load only when needed."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import SessionStore

if TYPE_CHECKING:
    from ._cached import CachedStore
    from ._cookie import CookieStore
    from ._file import FileStore
    from ._memcached import MemcachedStore
    from ._memory import MemoryStore
    from ._redis import RedisStore
    from ._sql import SQLStore
    from ._urls import store_from_url

__all__ = [
    "CachedStore",
    "CookieStore",
    "FileStore",
    "MemcachedStore",
    "MemoryStore",
    "RedisStore",
    "SQLStore",
    "SessionStore",
    "store_from_url",
]

_MODULES = {
    "CachedStore": "._cached",
    "CookieStore": "._cookie",
    "FileStore": "._file",
    "MemcachedStore": "._memcached",
    "MemoryStore": "._memory",
    "RedisStore": "._redis",
    "SQLStore": "._sql",
    "store_from_url": "._urls",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
