"""Flask's session settings (``app.config``) as sessionware options.

A Flask user configures sessions through ``SESSION_COOKIE_*``, ``SECRET_KEY`` and
``PERMANENT_SESSION_LIFETIME``; the integration reads them once, at ``init_app``, and an
option given to ``init_app`` wins over the config. Two Flask defaults are deliberately
not followed: ``SESSION_COOKIE_SAMESITE=None`` (sessionware keeps ``"lax"`` unless the
config names a value), and sessions are non-permanent (browser-session cookies) exactly
as in Flask, which sessionware spells ``expire_at_browser_close=True``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

# Flask's config name -> sessionware's option, for the names whose values mean the same.
_SAME_MEANING = {
    "SESSION_COOKIE_NAME": "cookie_name",
    "SESSION_COOKIE_HTTPONLY": "httponly",
    "SESSION_COOKIE_SECURE": "secure",
    "SESSION_COOKIE_PARTITIONED": "partitioned",
}
_SAMESITE = {"lax": "lax", "strict": "strict", "none": "none"}


def options_from_config(config: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``init_app`` builds its settings from: ``given`` plus what the config
    says about everything ``given`` leaves out."""
    options = dict(given)
    for name, option in _SAME_MEANING.items():
        if name in config:
            options.setdefault(option, config[name])
    domain = config.get("SESSION_COOKIE_DOMAIN")
    if isinstance(domain, str):
        # As Flask (Werkzeug) sends it: browsers ignore a leading dot (RFC 6265 5.2.3),
        # and Werkzeug's test client would never send such a cookie back.
        options.setdefault("domain", domain.lstrip(".") or None)
    elif domain is not None:
        options.setdefault("domain", domain)  # the option's own check names the mistake
    path = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT")
    if path:
        options.setdefault("path", path)
    samesite = config.get("SESSION_COOKIE_SAMESITE")
    if samesite is not None:
        options.setdefault("samesite", _samesite(samesite))
    lifetime = config.get("PERMANENT_SESSION_LIFETIME")
    if lifetime is not None:
        options.setdefault("max_age", _seconds(lifetime))
    options.setdefault("expire_at_browser_close", True)  # Flask: not permanent by default
    secret = config.get("SECRET_KEY")
    if secret and "secret_key" not in options:
        fallbacks = list(config.get("SECRET_KEY_FALLBACKS") or [])
        options["secret_key"] = [secret, *fallbacks] if fallbacks else secret
    return options


def refreshes_permanent(config: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    """Flask's ``SESSION_REFRESH_EACH_REQUEST``: a permanent session is saved again (and
    its cookie re-sent) by every request that uses it. An explicit ``save_every_request``
    decides instead (``True``: every session, every request; ``False``: only changes)."""
    if "save_every_request" in given:
        return False
    return bool(config.get("SESSION_REFRESH_EACH_REQUEST", True))


def _samesite(value: object) -> str:
    if isinstance(value, str) and value.lower() in _SAMESITE:
        return _SAMESITE[value.lower()]
    raise ValueError(
        f"SESSION_COOKIE_SAMESITE must be 'Lax', 'Strict', 'None' or None, not {value!r}"
    )


def _seconds(lifetime: object) -> int:
    """``PERMANENT_SESSION_LIFETIME`` is a timedelta or a number of seconds in Flask."""
    if isinstance(lifetime, dt.timedelta):
        return int(lifetime.total_seconds())
    if isinstance(lifetime, int | float) and not isinstance(lifetime, bool):
        return int(lifetime)
    raise TypeError(
        f"PERMANENT_SESSION_LIFETIME must be a timedelta or a number of seconds, not {lifetime!r}"
    )
