"""Store URLs: one string picks and configures a store, for the command line and settings.

Store classes are imported only for the scheme asked for, so ``memory://`` never needs
SQLAlchemy or redis installed; a missing driver surfaces as the store's own ImportError,
which names the extra to install.
"""

from __future__ import annotations

from typing import TypedDict
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
    "redis+cluster://host:port[,host:port…]",
    "redis+sentinel://host:port[,host:port…]/service_name[/db]",
    "memcached://host[:port]",
    "cookie://",
    "cached+redis://…?store=<url-encoded store URL>",
)

_SQL = frozenset({"sqlite", "postgresql", "postgres", "mysql", "mariadb"})
_REDIS = {
    "redis": "redis",
    "rediss": "rediss",
    "valkey": "redis",
    "valkeys": "rediss",
    "redis+cluster": "redis+cluster",
    "valkey+cluster": "redis+cluster",
    "redis+sentinel": "redis+sentinel",
    "valkey+sentinel": "redis+sentinel",
}
#: Query options of Redis URLs that configure the store; the others go to redis-py.
_REDIS_OPTIONS = frozenset({"prefix", "timeout", "wait_replicas", "wait_timeout"})
_TRUE = frozenset({"1", "true", "yes", "on"})


def store_from_url(url: str) -> SessionStore:
    """The store a URL names (see ``SUPPORTED``); ``ValueError`` for anything else.

    SQL URLs go to SQLAlchemy as they are (``sqlite:///rel.db`` is relative to the working
    directory, ``sqlite:////abs/path.db`` absolute), less ``?table=``, which names the
    session table; ``postgres://``, which many hosting platforms hand out and SQLAlchemy
    refuses, becomes ``postgresql://``.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.strip().lower()
    if not sep or not scheme:
        raise ValueError(_unsupported(url))
    base, plus, driver = scheme.partition("+")
    if base == "cached" and plus:
        return _cached(driver, rest)
    if scheme in _REDIS:
        return _redis(_REDIS[scheme], rest)
    if base in _SQL:
        if base == "postgres":
            scheme = "postgresql" + plus + driver
        return _sql(scheme, rest)
    if plus:
        raise ValueError(_unsupported(url))
    if scheme == "memcached":
        return _memcached(rest)
    if scheme == "memory":
        return _memory(rest)
    if scheme == "file":
        return _file(rest)
    if scheme == "cookie":
        options = _options(rest, {"encrypt"})
        return CookieStore(encrypt=options.get("encrypt", "").lower() in _TRUE)
    raise ValueError(_unsupported(url))


def _sql(scheme: str, rest: str) -> SessionStore:
    """``?table=NAME`` is the store's; every other query option goes to the driver,
    byte for byte as given."""
    from ._sql import SQLStore

    location, _, query = rest.partition("?")
    pairs = [pair for pair in query.split("&") if pair]
    tables = [
        unquote(pair.partition("=")[2]) for pair in pairs if pair.partition("=")[0] == "table"
    ]
    theirs = "&".join(pair for pair in pairs if pair.partition("=")[0] != "table")
    url = f"{scheme}://{location}" + (f"?{theirs}" if theirs else "")
    if not tables:
        return SQLStore(url)
    if len(tables) > 1:
        raise ValueError("a SQL store URL takes one table= option")
    return SQLStore(url, table=tables[0])


def _memcached(rest: str) -> SessionStore:
    """``memcached://host[:port]``, with ``?prefix=`` and ``?timeout=``."""
    from ._memcached import MemcachedStore

    location, _, query = rest.partition("?")
    given = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(given) - {"prefix", "timeout"})
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; accepted: prefix, timeout")
    options: _MemcachedOptions = {}
    if "prefix" in given:
        options["prefix"] = given["prefix"]
    if "timeout" in given:
        options["timeout"] = _seconds("timeout", given["timeout"])
    return MemcachedStore(f"memcached://{location}", **options)


class _MemcachedOptions(TypedDict, total=False):
    prefix: str
    timeout: float


def _memory(rest: str) -> SessionStore:
    from ._memory import MemoryStore

    options = _options(rest, {"max_entries"})
    raw = options.get("max_entries")
    if raw is None:
        return MemoryStore()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"memory:// max_entries must be a positive integer, not {raw!r}")
    return MemoryStore(max_entries=int(raw))


def _redis(scheme: str, rest: str) -> SessionStore:
    """``?prefix=``, ``?timeout=``, ``?wait_replicas=`` and ``?wait_timeout=`` configure
    the store; other query options are redis-py's (one server only)."""
    from ._redis import RedisStore

    location, _, query = rest.partition("?")
    pairs = parse_qsl(query, keep_blank_values=True)
    ours = {name: value for name, value in pairs if name in _REDIS_OPTIONS}
    theirs = urlencode([(name, value) for name, value in pairs if name not in _REDIS_OPTIONS])
    options: _RedisOptions = {}
    if "prefix" in ours:
        options["prefix"] = ours["prefix"]
    if "wait_replicas" in ours:
        raw = ours["wait_replicas"]
        if not raw.isdigit():
            raise ValueError(f"wait_replicas must be a whole number, not {raw!r}")
        options["wait_replicas"] = int(raw)
    if "timeout" in ours:
        options["timeout"] = _seconds("timeout", ours["timeout"])
    if "wait_timeout" in ours:
        options["wait_timeout"] = _seconds("wait_timeout", ours["wait_timeout"])
    return RedisStore(f"{scheme}://{location}" + (f"?{theirs}" if theirs else ""), **options)


class _RedisOptions(TypedDict, total=False):
    prefix: str
    timeout: float
    wait_replicas: int
    wait_timeout: float


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _file(rest: str) -> SessionStore:
    from ._file import FileStore

    path = unquote(rest.partition("?")[0])
    if path.startswith("localhost/"):  # RFC 8089 lets file URLs name the local host
        path = path[len("localhost") :]
    if not path:
        raise ValueError("file:// needs a directory, e.g. file:///var/lib/app/sessions")
    return FileStore(path)


def _cached(cache_scheme: str, rest: str) -> SessionStore:
    """``cached+<cache URL>?store=<store URL>[&cache_ttl=S]``: Django's cached_db as a
    URL; the cache URL's other options are the cache's."""
    from ._cached import CachedStore

    parts = urlsplit(f"{cache_scheme}://{rest}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    inner = [value for name, value in query if name == "store"]
    if len(inner) != 1 or not inner[0]:
        raise ValueError("a cached+ URL needs exactly one store=<url-encoded store URL>")
    ttls = [value for name, value in query if name == "cache_ttl"]
    if len(ttls) > 1:
        raise ValueError("a cached+ URL takes one cache_ttl= option")
    cache_query = urlencode([q for q in query if q[0] not in ("store", "cache_ttl")])
    cache_url = urlunsplit(parts._replace(query=cache_query))
    cache, store = store_from_url(cache_url), store_from_url(inner[0])
    if not (cache.server_side and store.server_side):
        raise ValueError("both parts of a cached+ URL must be server-side stores, not cookie://")
    if ttls:
        return CachedStore(cache=cache, store=store, cache_ttl=_seconds("cache_ttl", ttls[0]))
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


def redact(url: str) -> str:
    """The URL with its passwords hidden (a cached+ URL's inner one too), safe to print."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    has_inner = any(name == "store" for name, _ in query)
    if parts.password is None and not has_inner:
        return url  # untouched: urlunsplit would turn sqlite:///x.db into sqlite:/x.db
    if has_inner:
        inner = [(name, redact(value) if name == "store" else value) for name, value in query]
        parts = parts._replace(query=urlencode(inner))
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    return urlunsplit(parts)
