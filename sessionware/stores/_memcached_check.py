"""What ``MemcachedStore.check`` reports: the servers it reaches, read without writing.

Memcached cannot count the items under a prefix without listing every key it holds
(``lru_crawler metadump``, what ``clear_expired`` does), so the session count is
reported as unknown, next to the server's own item count (all prefixes).
"""

from __future__ import annotations

from typing import Any

from .._store import Finding


def check_memcached(client: Any, prefix: str) -> list[Finding]:
    """``version`` and ``stats`` of each server of ``client`` (a pymemcache client);
    failures propagate."""
    servers = _servers(client)
    findings = []
    for address, one in servers:
        version = _text(one.version())
        items = _text(one.stats().get(b"curr_items", b"?"))
        findings.append(("server", f"Memcached {version} at {address}, {items} items in all"))
    findings.append(("prefix", repr(prefix)))
    findings.append(("sessions", "unknown (Memcached cannot count a prefix's items cheaply)"))
    return findings


def _servers(client: Any) -> list[tuple[str, Any]]:
    """(address, client of that one server) for a ``Client``/``PooledClient`` or each
    server of a ``HashClient``."""
    nodes: dict[Any, Any] | None = getattr(client, "clients", None)
    if isinstance(nodes, dict):
        return [(str(name), node) for name, node in sorted(nodes.items(), key=str)]
    server = client.server
    if isinstance(server, tuple) and len(server) == 2:
        return [(f"{server[0]}:{server[1]}", client)]
    return [(str(server), client)]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
