"""The middleware options: declared once, checked once (the docs' "Configuration").

``Options`` types the keyword arguments both middlewares (and the Flask integration)
accept; ``build_settings`` turns them into the ``Settings`` the lifecycle reads, raising
a ``TypeError`` for a value of the wrong type and a ``ValueError`` for a wrong value, at
construction, never at the first request.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

from ._cookies import MAX_COOKIE_SIZE, CookieRules, SameSite
from ._expiry import MAX_AGE, TWO_WEEKS, ExpiryPolicy
from ._keys import SecretKey, new_key, secret_list
from ._serializers import FieldCodec, JSONSerializer, Serializer
from ._settings import OnSaveError, Settings
from ._store import DEFAULT_STALE_WINDOW, SessionStore
from .stores._cookie import CookieStore

SHORT_SECRET = 32  # bytes; HMAC keys shorter than the hash's output are weaker


class Options(TypedDict, total=False):
    """The options, documented in docs/configuration.md; each has a default in ``DEFAULTS``."""

    store: SessionStore | None
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
    stale_key_window: float
    renew_after: float | None
    renew_grace: float
    on_save_error: OnSaveError
    error_app: Callable[..., Any] | None
    user_key: str | None
    autoload: bool


DEFAULTS: dict[str, Any] = {
    "store": None,
    "secret_key": None,
    "cookie_name": "sessionid",
    "max_age": TWO_WEEKS,
    "absolute_max_age": None,
    "expire_at_browser_close": False,
    "path": "/",
    "domain": None,
    "secure": False,
    "httponly": True,
    "samesite": "lax",
    "partitioned": False,
    "save_every_request": False,
    "serializer": None,
    "exclude_paths": (),
    "stale_key_window": DEFAULT_STALE_WINDOW,
    "renew_after": None,
    "renew_grace": 30.0,
    "on_save_error": "unavailable",
    "error_app": None,
    "user_key": None,
    "autoload": True,
}

# Starlette's SessionMiddleware spells some options differently; say so when they appear.
_STARLETTE_NAMES = {
    "https_only": "secure",
    "same_site": "samesite",
    "session_cookie": "cookie_name",
}


def build_settings(options: Mapping[str, Any]) -> Settings:
    """Check every option now, so mistakes surface at start-up, never at a request."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(_unknown_message(unknown))
    given = {**DEFAULTS, **options}
    secrets = None if given["secret_key"] is None else secret_list(given["secret_key"])
    if secrets is not None and len(secrets[0]) < SHORT_SECRET:
        warnings.warn(
            f"secret_key is {len(secrets[0])} bytes; use at least {SHORT_SECRET} random bytes "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')",
            UserWarning,
            stacklevel=4,
        )
    store = given["store"]
    if store is None:
        if secrets is None:
            raise ValueError("give a store, or a secret_key to keep sessions in a signed cookie")
        store = CookieStore()
    if not isinstance(store, SessionStore):
        raise TypeError(f"store must be a sessionware store, not {type(store).__name__}")
    codec = FieldCodec(_serializer(given["serializer"]))
    codec.check()
    cookie = CookieRules(
        given["cookie_name"],
        given["path"],
        given["domain"],
        given["secure"],
        given["httponly"],
        given["samesite"],
        given["partitioned"],
    )
    policy = ExpiryPolicy(
        _seconds("max_age", given["max_age"], optional=True),
        _seconds("absolute_max_age", given["absolute_max_age"], optional=True),
        _flag("expire_at_browser_close", given["expire_at_browser_close"]),
    )
    settings = Settings(
        store=store,
        format=store.cookie_format(secrets, codec),
        codec=codec,
        cookie=cookie,
        policy=policy,
        save_every_request=_flag("save_every_request", given["save_every_request"]),
        exclude_paths=_prefixes(given["exclude_paths"]),
        stale_key_window=_duration("stale_key_window", given["stale_key_window"]),
        renew_after=_renew_after(given["renew_after"]),
        renew_grace=_duration("renew_grace", given["renew_grace"]),
        on_save_error=_on_save_error(given["on_save_error"]),
        error_app=_error_app(given["error_app"]),
        user_key=_user_key(given["user_key"], store),
        autoload=_flag("autoload", given["autoload"]),
    )
    _check_cookie_fits(settings)
    return settings


def _unknown_message(unknown: list[str]) -> str:
    hints = [
        f"{name!r} (sessionware calls it {_STARLETTE_NAMES[name]!r})"
        if name in _STARLETTE_NAMES
        else repr(name)
        for name in unknown
    ]
    return f"unknown session option {', '.join(hints)}; the options are: {', '.join(DEFAULTS)}"


def _serializer(serializer: object) -> Serializer:
    if serializer is None:
        return JSONSerializer()
    if not (
        callable(getattr(serializer, "dumps", None))
        and callable(getattr(serializer, "loads", None))
    ):
        raise TypeError("serializer needs dumps(dict) -> bytes and loads(bytes) -> dict methods")
    return serializer  # type: ignore[return-value]


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {value!r}")
    return value


def _seconds(name: str, value: object, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a whole number of seconds or None, not {value!r}")
    if not 0 < value <= MAX_AGE:
        raise ValueError(f"{name} must be between 1 and {MAX_AGE:,} seconds, not {value}")
    return value


def _duration(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if not 0 <= value <= MAX_AGE:
        raise ValueError(f"{name} must be between 0 and {MAX_AGE:,} seconds, not {value}")
    return float(value)


def _renew_after(value: object) -> float | None:
    if value is None:
        return None
    seconds = _duration("renew_after", value)
    if seconds <= 0:
        raise ValueError("renew_after must be a positive number of seconds, or None")
    return seconds


def _prefixes(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError("exclude_paths takes a sequence of path prefixes, not one string")
    for prefix in value:
        if not isinstance(prefix, str):
            raise TypeError(f"exclude_paths entries are str, not {type(prefix).__name__}")
        if not prefix.startswith("/"):
            raise ValueError(f"exclude_paths entries start with '/': {prefix!r}")
    return tuple(value)


def _on_save_error(value: object) -> OnSaveError:
    if value == "unavailable":
        return "unavailable"
    if value == "keep":
        return "keep"
    raise ValueError(f"on_save_error must be 'unavailable' or 'keep', not {value!r}")


def _error_app(value: object) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise TypeError(f"error_app must be an ASGI or WSGI app (callable), not {value!r}")
    return value


def _user_key(value: object, store: SessionStore) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"user_key must be a str (a session data key) or None, not {value!r}")
    if not value:
        raise ValueError("user_key must not be empty")
    if not store.server_side:
        raise ValueError(
            f"user_key needs a server-side store: {type(store).__name__} keeps sessions in "
            "the browser, so it can neither list nor revoke them; use SQLStore, RedisStore, "
            "FileStore or CachedStore"
        )
    if not store.supports_users:
        raise ValueError(f"{type(store).__name__} keeps no per-user index; user_key needs one")
    return value


def _check_cookie_fits(settings: Settings) -> None:
    """Key cookies have a fixed size: a path or domain that pushes them past what
    browsers keep is a configuration mistake, found now."""
    if settings.format.carries_payload:
        return
    sample = settings.cookie.set_cookie(settings.format.encode(new_key(), None), MAX_AGE, 0.0)
    if len(sample) > MAX_COOKIE_SIZE:
        raise ValueError(
            f"the session cookie would be {len(sample)} bytes with these attributes, over "
            f"the {MAX_COOKIE_SIZE} browsers keep; shorten path, domain or cookie_name"
        )
