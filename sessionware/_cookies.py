"""The cookie codec both middlewares share: parse ``Cookie``, build ``Set-Cookie``, merge ``Vary``.

Parsing is deliberately forgiving of other cookies (a garbage cookie of another app must
not hide ours) and strict about ours: a duplicated session cookie counts as unreadable.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

MAX_COOKIE_SIZE = 4093  # what browsers keep for name + value + attributes
MAX_VALUE_LENGTH = 8192  # longer values are not ours; refuse before any decoding

SameSite = Literal["lax", "strict", "none"] | None

# RFC 6265: a cookie name is an RFC 7230 token; a path any CHAR but CTLs and ';' (we also
# refuse spaces and commas, which proxies mangle); a domain a host name, nothing more.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(r"/[\x21-\x2b\x2d-\x3a\x3c-\x7e]*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")


class Duplicated:
    """Marker: the session cookie came more than once, so no value can be trusted."""


DUPLICATED = Duplicated()


def find_cookie(header_values: list[str], name: str) -> str | Duplicated | None:
    """The value of cookie ``name`` in ``Cookie`` header values; ``DUPLICATED`` if repeated."""
    found: str | None = None
    for header in header_values:
        for chunk in header.split(";"):
            cname, sep, value = chunk.partition("=")
            if not sep or cname.strip() != name:
                continue
            if found is not None:
                return DUPLICATED
            found = value.strip().strip('"')
    return found


@dataclass(frozen=True, slots=True)
class CookieRules:
    """Validated cookie attributes of one middleware."""

    name: str
    path: str = "/"
    domain: str | None = None
    secure: bool = False
    httponly: bool = True
    samesite: SameSite = "lax"
    partitioned: bool = False
    _suffix: str = field(default="", init=False, repr=False, compare=False)

    def _check(self) -> None:
        for option, value in (("cookie_name", self.name), ("path", self.path)):
            if not isinstance(value, str):
                raise TypeError(f"{option} must be a str, not {type(value).__name__}")
        if self.domain is not None and not isinstance(self.domain, str):
            raise TypeError(f"domain must be a str or None, not {type(self.domain).__name__}")
        flags: tuple[tuple[str, object], ...] = (
            ("secure", self.secure),
            ("httponly", self.httponly),
            ("partitioned", self.partitioned),
        )
        for option, flag in flags:
            if not isinstance(flag, bool):
                raise TypeError(f"{option} must be True or False, not {flag!r}")
        if not self.name or not _TOKEN.fullmatch(self.name):
            raise ValueError(
                f"invalid cookie_name {self.name!r}: use letters, digits and !#$%&'*+-.^_`|~"
            )
        if not _PATH.fullmatch(self.path):
            raise ValueError(
                f"path must start with '/' and hold no ';', spaces or control characters, "
                f"not {self.path!r}"
            )
        if self.domain is not None and not _DOMAIN.fullmatch(self.domain):
            raise ValueError(
                f"domain must be a bare host name such as 'example.com' (no scheme, port, "
                f"path or ';'), not {self.domain!r}"
            )
        if self.samesite not in ("lax", "strict", "none", None):
            raise ValueError("samesite must be 'lax', 'strict', 'none' or None")
        if self.samesite == "none" and not self.secure:
            raise ValueError("samesite='none' requires secure=True (browsers reject it otherwise)")
        if self.partitioned and not self.secure:
            raise ValueError("partitioned=True requires secure=True")
        prefix = self.name.lower()  # browsers match the prefixes case-insensitively
        if prefix.startswith("__host-") and (
            not self.secure or self.path != "/" or self.domain is not None
        ):
            raise ValueError("a __Host- cookie requires secure=True, path='/' and no domain")
        if prefix.startswith("__secure-") and not self.secure:
            raise ValueError("a __Secure- cookie requires secure=True")

    def __post_init__(self) -> None:
        self._check()
        # Built once: every Set-Cookie of this middleware ends the same way.
        object.__setattr__(self, "_suffix", self._attributes())

    def _attributes(self) -> str:
        parts = [f"; Path={self.path}"]
        if self.domain:
            parts.append(f"; Domain={self.domain}")
        if self.secure:
            parts.append("; Secure")
        if self.httponly:
            parts.append("; HttpOnly")
        if self.samesite is not None:
            parts.append(f"; SameSite={self.samesite.capitalize()}")
        if self.partitioned:
            parts.append("; Partitioned")
        return "".join(parts)

    def set_cookie(self, value: str, max_age: int | None, now: float) -> str:
        """A ``Set-Cookie`` value; ``max_age=None`` makes a browser-session cookie."""
        if max_age is None:
            return f"{self.name}={value}{self._suffix}"
        expires = _http_date(int(now) + max_age)
        return f"{self.name}={value}; Max-Age={max_age}; Expires={expires}{self._suffix}"

    def delete_cookie(self) -> str:
        """Tells the browser to drop the cookie (same path and domain, so it matches)."""
        return f'{self.name}=""; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{self._suffix}'


@lru_cache(maxsize=256)
def _http_date(timestamp: int) -> str:
    """``Expires`` dates repeat within a second, and formatting one costs microseconds."""
    return email.utils.formatdate(timestamp, usegmt=True)


def merge_vary(existing: str | None, value: str = "Cookie") -> str:
    """Add ``value`` to a ``Vary`` header unless it (or ``*``) is already there."""
    if not existing:
        return value
    present = {part.strip().lower() for part in existing.split(",")}
    if value.lower() in present or "*" in present:
        return existing
    return f"{existing}, {value}"


def edit_headers(
    headers: list[tuple[str, str]], vary: bool, set_cookie: str | None, cookie_name: str
) -> list[tuple[str, str]]:
    """Merge ``Vary: Cookie`` and replace only our own ``Set-Cookie``; the app's headers stay."""
    result: list[tuple[str, str]] = []
    vary_value: str | None = None
    own_prefix = cookie_name + "="
    for name, value in headers:
        lower = name.lower()
        if vary and lower == "vary":
            vary_value = value if vary_value is None else f"{vary_value}, {value}"
            continue
        if (
            set_cookie is not None
            and lower == "set-cookie"
            and value.lstrip().startswith(own_prefix)
        ):
            continue
        result.append((name, value))
    if vary:
        result.append(("Vary", merge_vary(vary_value)))
    if set_cookie is not None:
        result.append(("Set-Cookie", set_cookie))
    return result
