"""The keyword options both middlewares accept (API.md §1), typed once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from ._cookies import SameSite
from ._keys import SecretKey
from ._serializers import Serializer
from .stores._cookie import CookieStore
from .stores.base import SessionStore


class Options(TypedDict, total=False):
    """See the options table in the README; every mistake is a ValueError at construction."""

    store: SessionStore | CookieStore | None
    secret_key: SecretKey | Sequence[SecretKey] | None
    cookie_name: str
    max_age: int | None
    absolute_max_age: int | None
    expire_at_browser_close: bool
    path: str
    domain: str | None
    secure: bool
    httponly: bool
    samesite: SameSite
    partitioned: bool
    save_every_request: bool
    serializer: Serializer | None
    exclude_paths: Sequence[str]
