"""Expiry maths as pure functions of "now", shared by the session, the lifecycle and stores."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

TWO_WEEKS = 1_209_600


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
    """Validate a ``set_expiry`` argument and turn it into what is stored."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("set_expiry() takes int seconds, timedelta, aware datetime or None")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("set_expiry() seconds must be >= 0")
        return Expiry("age", float(value))
    if isinstance(value, dt.timedelta):
        return Expiry("at", now + value.total_seconds())
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("set_expiry() needs an aware datetime (with tzinfo)")
        return Expiry("at", value.timestamp())
    raise TypeError("set_expiry() takes int seconds, timedelta, aware datetime or None")


def expiry_age(expiry: Expiry | None, policy: ExpiryPolicy, now: float) -> int:
    """Seconds the session lives from ``now`` (Django's ``get_expiry_age``)."""
    if expiry is None or (expiry.kind == "age" and expiry.value == 0):
        return policy.default_age
    if expiry.kind == "age":
        return int(expiry.value)
    return max(0, int(expiry.value - now))


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
    return expires


def is_dead(expires_at: float, created_at: float, policy: ExpiryPolicy, now: float) -> bool:
    """Checked at load, so a replayed cookie or an unpurged record never revives a session."""
    if expires_at <= now:
        return True
    return policy.absolute_max_age is not None and created_at + policy.absolute_max_age <= now


def to_datetime(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
