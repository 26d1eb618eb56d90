"""Expiry maths as pure functions of "now", shared by the session, the lifecycle and stores."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

TWO_WEEKS = 1_209_600
# The longest lifetime every store can hold (Memcached, Redis TTLs, 32-bit cookie dates):
# ten years. Longer values are refused when set, never written and then failed.
MAX_AGE = 315_360_000


@dataclass(frozen=True, slots=True)
class Expiry:
    """A custom expiry from ``set_expiry``: an idle age in seconds, or an absolute time."""

    kind: Literal["age", "at"]
    value: float

    def to_json(self) -> list[str | float]:
        return [self.kind, self.value]

    @staticmethod
    def from_json(raw: object) -> Expiry | None:
        """Decode what ``to_json`` wrote; anything else means no custom expiry."""
        if isinstance(raw, list) and len(raw) == 2:
            kind, value = raw
            if (
                kind in ("age", "at")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                return Expiry(kind, float(value))
        return None


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """The middleware's expiry options, as every session of one middleware sees them."""

    max_age: int | None = TWO_WEEKS
    absolute_max_age: int | None = None
    expire_at_browser_close: bool = False

    @property
    def default_age(self) -> int:
        """Idle lifetime when the session sets none; ``max_age=None`` keeps two weeks."""
        return TWO_WEEKS if self.max_age is None else self.max_age


def expiry_from_value(value: object, now: float) -> Expiry | None:
    """Validate a ``set_expiry`` argument and turn it into what is stored.

    Negative seconds or a past time save the session already expired, as in Django.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("set_expiry() takes int seconds, timedelta, aware datetime or None")
    if isinstance(value, int):
        return Expiry("age", float(_in_range(value)))
    if isinstance(value, dt.timedelta):
        return Expiry("at", now + _in_range(value.total_seconds()))
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("set_expiry() needs an aware datetime (with tzinfo)")
        try:
            at = value.timestamp()
        except (OverflowError, ValueError, OSError) as exc:
            raise ValueError(f"set_expiry() datetime out of range: {value!r}") from exc
        # Any past moment means "expired now"; only the far future is refused.
        return Expiry("at", now + _in_range(max(at - now, -MAX_AGE)))
    raise TypeError("set_expiry() takes int seconds, timedelta, aware datetime or None")


def _in_range(seconds: float) -> float:
    if not -MAX_AGE <= seconds <= MAX_AGE:
        raise ValueError(
            f"set_expiry() accepts at most {MAX_AGE:,} seconds (ten years) either way, "
            f"not {seconds:,.0f}: every store must be able to hold the session"
        )
    return seconds


def expiry_age(expiry: Expiry | None, policy: ExpiryPolicy, now: float) -> int:
    """Seconds the session lives from ``now`` (Django's ``get_expiry_age``)."""
    if expiry is None or (expiry.kind == "age" and expiry.value == 0):
        return policy.default_age
    if expiry.kind == "age":
        return int(expiry.value)
    return int(expiry.value - now)


def expire_at_browser_close(expiry: Expiry | None, policy: ExpiryPolicy) -> bool:
    """Whether the cookie is a browser-session cookie (Django's rule)."""
    if expiry is None:
        return policy.expire_at_browser_close or policy.max_age is None
    return expiry.kind == "age" and expiry.value == 0


def record_expires_at(
    expiry: Expiry | None, policy: ExpiryPolicy, created_at: float, now: float
) -> float:
    """When the stored record dies: idle age from now, capped by the absolute lifetime."""
    expires = now + expiry_age(expiry, policy, now)
    if policy.absolute_max_age is not None:
        expires = min(expires, created_at + policy.absolute_max_age)
    return max(expires, now - 1.0)  # saved already expired, never absurdly far back


def is_dead(expires_at: float, created_at: float, policy: ExpiryPolicy, now: float) -> bool:
    """Checked at load, so a replayed cookie or an unpurged record never revives a session."""
    if expires_at <= now:
        return True
    return policy.absolute_max_age is not None and created_at + policy.absolute_max_age <= now


def to_datetime(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
