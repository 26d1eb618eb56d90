"""What ``CachedStore`` keeps in its cache: copies of the store's records, and seals.

A *copy* is a record the store gave a load, changed in two ways:

- its ``expires_at`` is cut to at most ``cache_ttl`` after the fill, so the cache itself
  forgets every copy within ``cache_ttl``, whatever became of the writes that should have
  sealed it; the store's own ``expires_at`` rides along in a meta field, and is what a
  hit gives back and is checked against;
- that meta field is named so that no session field can take its name: a field whose
  name begins with NUL gains one more NUL in the cache.

A *seal* means "read the store, and do not fill": a ``Stale`` marker the cache made of a
copy, or, where nothing was cached, a record holding an empty meta field. Both expire on
their own. Anything else under a key (a marker, a foreign or unreadable record) is
treated as a seal: it is never served, and never overwritten by a fill.
"""

from __future__ import annotations

import enum

from .._records import Loaded, Record, check_timestamp

META = "\x00c"
_ESCAPE = "\x00"  # escaped names begin with two NULs, so none is ever META


class Found(enum.Enum):
    """What a cache read found, when it is not a copy to serve."""

    MISS = "nothing cached: read the store, then fill"
    SEALED = "sealed: read the store, do not fill"


def copy_of(record: Record, now: float, cache_ttl: float) -> Record | None:
    """The cache's copy of a store record read at ``now``; ``None`` if it would be dead."""
    until = min(record.expires_at, now + cache_ttl)
    if until <= now:
        return None
    fields = {META: repr(record.expires_at).encode()}
    for name, raw in record.fields.items():
        fields[_ESCAPE + name if name.startswith(_ESCAPE) else name] = raw
    return Record(
        fields,
        record.created_at,
        until,
        record.expiry,
        record.key_at,
        record.updated_at,
        record.user,
    )


def seal_record(now: float, until: float) -> Record:
    """The seal written where nothing was cached (a copy is sealed by ``delete``)."""
    return Record({META: b""}, now, until)


def copy_size(record: Record) -> int:
    """The bytes of data a copy of ``record`` holds (what a cache's ``max_data_bytes``
    limits), its meta field included."""
    return sum(map(len, record.fields.values())) + len(repr(record.expires_at))


def read_entry(loaded: Loaded) -> Record | Found:
    """The store's record a cache entry is a copy of, or what else was found."""
    if loaded is None:
        return Found.MISS
    if not isinstance(loaded, Record):
        return Found.SEALED
    meta = loaded.fields.get(META)
    if not meta:
        return Found.SEALED
    try:
        expires_at = check_timestamp(float(meta))
    except ValueError:
        return Found.SEALED
    fields = {
        name[1:] if name.startswith(_ESCAPE) else name: raw
        for name, raw in loaded.fields.items()
        if name != META
    }
    return Record(
        fields,
        loaded.created_at,
        expires_at,
        loaded.expiry,
        loaded.key_at,
        loaded.updated_at,
        loaded.user,
    )
