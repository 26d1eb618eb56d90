"""Middleware options, validated once at construction and shared by both adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ._cookies import CookieRules, SameSite
from ._expiry import TWO_WEEKS, ExpiryPolicy
from ._keys import KeySigner, SecretKey, secret_list
from ._serializers import Serializer
from .stores._cookie import CookieCodec, CookieStore
from .stores.base import SessionStore


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the lifecycle needs to know about one middleware."""

    store: SessionStore | None  # None: the session lives in the cookie (``codec``)
    codec: CookieCodec | None
    signer: KeySigner | None
    cookie: CookieRules
    policy: ExpiryPolicy
    save_every_request: bool
    exclude_paths: tuple[str, ...]
    closeable: SessionStore | CookieStore


def build_settings(
    *,
    store: SessionStore | CookieStore | None = None,
    secret_key: SecretKey | Sequence[SecretKey] | None = None,
    cookie_name: str = "sessionid",
    max_age: int | None = TWO_WEEKS,
    absolute_max_age: int | None = None,
    expire_at_browser_close: bool = False,
    path: str = "/",
    domain: str | None = None,
    secure: bool = False,
    httponly: bool = True,
    samesite: SameSite = "lax",
    partitioned: bool = False,
    save_every_request: bool = False,
    serializer: Serializer | None = None,
    exclude_paths: Sequence[str] = (),
) -> Settings:
    """Check every option now, so mistakes surface at start-up, never at a request."""
    secrets = None if secret_key is None else secret_list(secret_key)
    if store is None:
        if secrets is None:
            raise ValueError("give a store, or a secret_key to keep sessions in a signed cookie")
        store = CookieStore()
    if not isinstance(store, SessionStore | CookieStore):
        raise ValueError(f"store must be a SessionStore or CookieStore, not {type(store).__name__}")
    for name, value in (("max_age", max_age), ("absolute_max_age", absolute_max_age)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value <= 0
        ):
            raise ValueError(f"{name} must be a positive int (seconds) or None")
    if serializer is not None:
        if not (
            callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))
        ):
            raise ValueError("serializer needs dumps(dict) -> bytes and loads(bytes) -> dict")
        store.serializer = serializer
    if isinstance(exclude_paths, str):
        raise ValueError("exclude_paths takes a sequence of path prefixes, not one string")
    for prefix in exclude_paths:
        if not prefix.startswith("/"):
            raise ValueError(f"exclude_paths entries start with '/': {prefix!r}")
    cookie = CookieRules(cookie_name, path, domain, secure, httponly, samesite, partitioned)
    policy = ExpiryPolicy(max_age, absolute_max_age, expire_at_browser_close)
    if isinstance(store, CookieStore):
        if secrets is None:
            raise ValueError("CookieStore needs secret_key to sign its cookies")
        return Settings(
            None,
            store.codec(secrets),
            None,
            cookie,
            policy,
            save_every_request,
            tuple(exclude_paths),
            store,
        )
    signer = None if secrets is None else KeySigner(secrets)
    return Settings(
        store, None, signer, cookie, policy, save_every_request, tuple(exclude_paths), store
    )
