"""Helpers of the security suite: a controllable clock, a private Redis, cookie tampering."""

from __future__ import annotations

import base64
import string
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.clients import Client

COOKIE = "sessionid"
B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
EMPTY: dict[str, Any] = {"key": None, "data": {}}


# -- cookies in responses -----------------------------------------------------------------------


def session_cookies(response: httpx.Response, name: str = COOKIE) -> list[str]:
    """The ``Set-Cookie`` values of the response that concern the session cookie."""
    return [c for c in response.headers.get_list("set-cookie") if c.startswith(name + "=")]


def cookie_value(set_cookie: str) -> str:
    """The value of a ``Set-Cookie`` header (``name=VALUE; attrs``)."""
    return set_cookie.partition(";")[0].partition("=")[2]


def sent_value(response: httpx.Response) -> str:
    """The one session cookie value the response sets (fails if there is not exactly one)."""
    (header,) = session_cookies(response)
    assert "Max-Age=0" not in header, header
    return cookie_value(header)


def is_deletion(response: httpx.Response) -> bool:
    """Whether the response tells the browser to drop the session cookie."""
    cookies = session_cookies(response)
    return len(cookies) == 1 and "Max-Age=0" in cookies[0]


def replay(client: Client, value: str | bytes, path: str = "/read") -> httpx.Response:
    """Send exactly this session cookie, as an attacker replaying a copied value would."""
    client.cookies.clear()
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return client.get(path, headers={"Cookie": b"sessionid=" + raw})


# -- time ---------------------------------------------------------------------------------------


class Clock:
    """Stands in for ``time.time`` everywhere (middlewares, lifecycle, session, stores)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- tampering ----------------------------------------------------------------------------------


def flip_char_bit(value: str, position: int, bit: int) -> str:
    """Flip one bit of the base64 character at ``position`` (it stays in the alphabet).

    A separator or padding character (``.``, ``=``) is replaced by ``A`` instead.
    """
    char = value[position]
    index = B64_ALPHABET.find(char)
    replacement = "A" if index < 0 else B64_ALPHABET[index ^ (1 << bit)]
    return value[:position] + replacement + value[position + 1 :]


def b64decode_loose(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64encode_like(raw: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(raw).decode("ascii")
    return text if padded else text.rstrip("=")


def flip_byte_bit(segment: str, index: int, bit: int) -> str:
    """Decode a base64 segment, flip one bit of byte ``index``, encode it the same way."""
    raw = bytearray(b64decode_loose(segment))
    raw[index] ^= 1 << bit
    return b64encode_like(bytes(raw), padded=segment.endswith("="))


def spread(length: int, count: int) -> list[int]:
    """``count`` positions spread over ``range(length)``, always with the first and last."""
    if length <= count:
        return list(range(length))
    step = (length - 1) / (count - 1)
    return sorted({round(i * step) for i in range(count)})


def tampered_variants(value: str) -> dict[str, str]:
    """Named tamperings of a cookie value: bit flips, truncations, appended bytes."""
    variants: dict[str, str] = {}
    for position in spread(len(value), 16):
        variants[f"char{position}-bit0"] = flip_char_bit(value, position, 0)
    variants[f"char{len(value) - 1}-bit1"] = flip_char_bit(value, len(value) - 1, 1)
    segments = value.split(".")
    offset = 0
    for number, segment in enumerate(segments):
        body = segment.rstrip("=")
        size = len(b64decode_loose(body)) if body else 0
        for index in spread(size, 6):
            for bit in (0, 7):
                flipped = flip_byte_bit(segment, index, bit)
                name = f"segment{number}-byte{index}-bit{bit}"
                variants[name] = value[:offset] + flipped + value[offset + len(segment) :]
        offset += len(segment) + 1
    for cut in (1, 2, 3, 4, 10, len(value) // 2):
        variants[f"truncated-{cut}"] = value[:-cut]
    for suffix in ("A", "AAAA", "=", "==", "!!", "\u00e9", ".", ".A", "x" * 10):
        variants[f"appended-{suffix.encode('unicode_escape').decode()}"] = value + suffix
    variants["prepended-A"] = "A" + value
    return {name: v for name, v in variants.items() if v != value}


def base64_needles(plain: bytes) -> list[str]:
    """Substrings that any base64 (standard or URL-safe) encoding of a text holding
    ``plain`` must contain, whatever its alignment inside that text."""
    needles = []
    for shift in range(3):
        padded = b"\0" * shift + plain
        full = len(padded) // 3 * 4
        start = 4 if shift else 0
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            needle = encode(padded).decode("ascii")[start:full]
            if len(needle) >= 8:
                needles.append(needle)
    return needles


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def as_json(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def max_age_of(set_cookie: str) -> int | None:
    """The ``Max-Age`` attribute of a ``Set-Cookie`` value, if any."""
    for part in set_cookie.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age":
            return int(value)
    return None
