"""What one middleware was configured with, as the lifecycle reads it (built by ``_options``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._cookies import CookieRules
from ._expiry import ExpiryPolicy
from ._formats import CookieFormat
from ._serializers import FieldCodec
from ._store import SessionStore

OnSaveError = Literal["unavailable", "keep"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the lifecycle needs to know about one middleware."""

    store: SessionStore
    format: CookieFormat
    codec: FieldCodec
    cookie: CookieRules
    policy: ExpiryPolicy
    save_every_request: bool
    exclude_paths: tuple[str, ...]
    stale_key_window: float
    renew_after: float | None
    renew_grace: float
    on_save_error: OnSaveError
    error_app: Callable[..., Any] | None
    user_key: str | None
    autoload: bool
