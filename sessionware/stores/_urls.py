"""Store URLs: one string picks and configures a store, for the command line and settings.

Store classes are imported only for the scheme asked for, so ``memory://`` never needs
SQLAlchemy or redis installed; a missing driver surfaces as the store's own ImportError,
which names the extra to install.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ._cookie import CookieStore
from .base import SessionStore

SUPPORTED = (
    "memory://",
    "file:///path/to/dir",
    "sqlite:///file.db",
    "postgresql://…",
    "mysql://…",
    "mariadb://…",
    "redis://…",
    "rediss://…",
    "valkey://…",
    "cookie://",
    "cached+redis://…?store=<url-encoded store URL>",
)

_SQL = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})
_REDIS = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss"}
_TRUE = frozenset({"1", "true", "yes", "on"})


def store_from_url(url: str) -> SessionStore | CookieStore:
    """The store a URL names (see ``SUPPORTED``); ``ValueError`` for anything else.

    SQL URLs go to SQLAlchemy unchanged (``sqlite:///rel.db`` is relative to the working
    directory, ``sqlite:////abs/path.db`` absolute), except ``postgres://``, which many
    hosting platforms hand out and SQLAlchemy refuses, becoming ``postgresql://``.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.strip().lower()
    if not sep or not scheme:
        raise ValueError(_unsupported(url))
    base, plus, driver = scheme.partition("+")
    if base == "cached" and plus:
        return _cached(driver, rest)
    if base in _SQL:
        from ._sql import SQLStore

        if base == "postgres":
            scheme = "postgresql" + plus + driver
        return SQLStore(f"{scheme}://{rest}")
    if plus:
        raise ValueError(_unsupported(url))
    if scheme in _REDIS:
        from ._redis import RedisStore

        return RedisStore(f"{_REDIS[scheme]}://{rest}")
    if scheme == "memory":
        return _memory(rest)
    if scheme == "file":
        return _file(rest)
    if scheme == "cookie":
        options = _options(rest, {"encrypt"})
        return CookieStore(encrypt=options.get("encrypt", "").lower() in _TRUE)
    raise ValueError(_unsupported(url))


def _memory(rest: str) -> SessionStore:
    from ._memory import MemoryStore

    options = _options(rest, {"max_entries"})
    raw = options.get("max_entries")
    if raw is None:
        return MemoryStore()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"memory:// max_entries must be a positive integer, not {raw!r}")
    return MemoryStore(max_entries=int(raw))


def _file(rest: str) -> SessionStore:
    from ._file import FileStore

    path = unquote(rest.partition("?")[0])
    if path.startswith("localhost/"):  # RFC 8089 lets file URLs name the local host
        path = path[len("localhost") :]
    if not path:
        raise ValueError("file:// needs a directory, e.g. file:///var/lib/app/sessions")
    return FileStore(path)


def _cached(cache_scheme: str, rest: str) -> SessionStore:
    """``cached+<cache URL>?store=<store URL>``: Django's cached_db as a URL."""
    from ._cached import CachedStore

    parts = urlsplit(f"{cache_scheme}://{rest}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    inner = [value for name, value in query if name == "store"]
    if len(inner) != 1 or not inner[0]:
        raise ValueError("a cached+ URL needs exactly one store=<url-encoded store URL>")
    cache_url = urlunsplit(parts._replace(query=urlencode([q for q in query if q[0] != "store"])))
    cache, store = store_from_url(cache_url), store_from_url(inner[0])
    if not isinstance(cache, SessionStore) or not isinstance(store, SessionStore):
        raise ValueError("both parts of a cached+ URL must be server-side stores, not cookie://")
    return CachedStore(cache=cache, store=store)


def _options(rest: str, allowed: set[str]) -> dict[str, str]:
    """Query options of the stores whose URL has no host or path of its own."""
    location, _, query = rest.partition("?")
    if location.strip("/"):
        raise ValueError(f"unexpected location {location!r}; options go after '?'")
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed))
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; accepted: {accepted}")
    return options


def _unsupported(url: str) -> str:
    # Only the scheme is echoed: the rest of a URL may hold a password.
    scheme = url.partition(":")[0]
    return f"unsupported store URL scheme {scheme!r}; supported: {', '.join(SUPPORTED)}"
