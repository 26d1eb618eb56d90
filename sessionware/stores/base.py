"""The public store API: what a store keeps, what it is given, and what it must guarantee.

Write a store by subclassing ``SessionStore`` and implementing its sync methods (and, for
native async I/O, their ``a``-prefixed twins); check it with
``sessionware.testing.conformance``. The guarantees are in ``SessionStore``'s module
documentation, repeated in the docs' "Writing a store" guide.
"""

from __future__ import annotations

from .._errors import SessionStoreError, map_store_errors
from .._expiry import Expiry
from .._keys import info_id, is_valid_key
from .._records import (
    Change,
    Fields,
    KeptFields,
    Loaded,
    Moved,
    PackedFields,
    Record,
    SessionInfo,
    Stale,
    apply_change,
    newest_first,
    pack_fields,
    session_info,
    unpack_fields,
)
from .._store import (
    DEFAULT_STALE_WINDOW,
    Finding,
    Progress,
    SessionStore,
    Written,
    now_or,
    user_text,
)

__all__ = [
    "DEFAULT_STALE_WINDOW",
    "Change",
    "Expiry",
    "Fields",
    "Finding",
    "KeptFields",
    "Loaded",
    "Moved",
    "PackedFields",
    "Progress",
    "Record",
    "SessionInfo",
    "SessionStore",
    "SessionStoreError",
    "Stale",
    "Written",
    "apply_change",
    "info_id",
    "is_valid_key",
    "map_store_errors",
    "newest_first",
    "now_or",
    "pack_fields",
    "session_info",
    "unpack_fields",
    "user_text",
]
