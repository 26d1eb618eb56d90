"""The response rules as one decision table; read this to learn them (the docs render it).

How a request began (``Began``), decided when its cookie was read and, if needed, its
session loaded:

=========  ==============================================================================
NO_COOKIE  no session cookie came
BAD        one came but is not ours: duplicated, oversized, a bad signature, malformed
UNKNOWN    well-formed, but no live session has that key (such a key is never adopted)
STALE      its key was flushed, rotated away or revoked lately: the session is empty
LIVE       the stored session was loaded
FOLLOWED   its key was renewed by another request; the session was loaded through the
           forward pointer, under its new key (key renewal)
=========  ==============================================================================

At the response, the first rule that matches decides (``decide``). "Store" is what is
written, "cookie" what the response says about the session cookie:

====  ===========================================  =====================  ================
rule  when                                         store                  cookie
====  ===========================================  =====================  ================
1     the response is a 5xx, or the app raised     nothing                untouched
2     began STALE, and no new key was asked for    nothing (a write is    untouched
      (a parallel request the browser sent before  dropped, with a
      it saw the cookie a login or logout set)     warning)
3     the session was never loaded (lazy)          nothing                untouched
4     nothing to do: not modified, no              nothing                untouched
      ``save_every_request``, no old secret, not
      FOLLOWED, no renewal due, and not (empty
      with a cookie)
5     ``cycle_key()``/``create()`` on a loaded     Rotate: the old key    the new key
      session                                      turns stale, the data
                                                   moves
6     ``flush()`` of a loaded session              Delete: the old key    deleted; or, if
                                                   turns stale; then      data was written
                                                   Insert if data was     after the flush,
                                                   written after it       the new key
7     empty at the end and a cookie came           nothing                deleted
      (BAD, UNKNOWN: a stranger's key is dropped)
8     renewal due (key older than ``renew_after``) Renew: the old key     the new key
                                                   points to the new one
                                                   for ``renew_grace``;
                                                   then Update if changed
9     the loaded key is kept                       Update if modified or  the key, if
                                                   ``save_every_request`` written, re-signed
                                                                          or FOLLOWED
10    otherwise: new data and no key yet, or a     Insert under a new key the new key
      stale key's request that called
      ``cycle_key()``/``create()`` (a login from a
      browser whose last login or logout failed)
====  ===========================================  =====================  ================

What a store answers can still end a save (``_lifecycle`` carries these out):

- **Dropped.** The key was ended by a concurrent request (logout, login rotation,
  revocation): its Rotate, Delete, Renew or Update finds no live record. Nothing more is
  written, a warning is logged (naming the session by fingerprint only), and the cookie
  is **untouched**: the browser keeps whatever the request that ended it sent.
- **Moved.** The key was renewed meanwhile: the write follows the pointer and the
  response sends the new key.
- **Store failure.** Before the app runs: 503 (or ``error_app``). After: 503, or with
  ``on_save_error="keep"`` the app's own response without a cookie.
- **Programming errors** (a value the serializer cannot encode, a session too large for
  its store or cookie) are found before any store call, so nothing is half-written.

``Vary: Cookie`` goes on every response whose session was accessed, and on every
response that sets or deletes the session cookie.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal


class Began(enum.Enum):
    NO_COOKIE = "no cookie"
    BAD = "bad cookie"
    UNKNOWN = "unknown key"
    STALE = "stale key"
    LIVE = "live"
    FOLLOWED = "followed"


@dataclass(slots=True)  # built once per response: a frozen dataclass's __init__ costs more
class Facts:
    """Everything ``decide`` looks at, gathered by the lifecycle without any I/O."""

    began: Began
    status: int
    loaded: bool
    modified: bool
    save_every_request: bool
    old_secret: bool
    renewal_due: bool
    rotated: bool  # the loaded key is no longer the session's key
    has_key: bool  # the session has a key at the end (None after flush)
    empty: bool  # is_empty(): no key, no data, no custom expiry


@dataclass(frozen=True, slots=True)
class Plan:
    """A row of the table: which store operations, in order, and the cookie."""

    rule: int
    end_old: Literal["rotate", "delete"] | None = None
    renew: bool = False
    write: Literal["update", "insert"] | None = None
    cookie: Literal["set", "delete"] | None = None


# Every row of the table as a constant: ``decide`` only picks one.
SERVER_ERROR = Plan(rule=1)
STALE_KEY = Plan(rule=2)
NOT_LOADED = Plan(rule=3)
LEAVE_ALONE = Plan(rule=4)
ROTATE = Plan(rule=5, end_old="rotate", cookie="set")
FLUSH_THEN_INSERT = Plan(rule=6, end_old="delete", write="insert", cookie="set")
FLUSH = Plan(rule=6, end_old="delete", cookie="delete")
DROP_COOKIE = Plan(rule=7, cookie="delete")
NOTHING_TO_DROP = Plan(rule=7)
RENEW_AND_UPDATE = Plan(rule=8, renew=True, write="update", cookie="set")
RENEW = Plan(rule=8, renew=True, cookie="set")
UPDATE_AND_SEND = Plan(rule=9, write="update", cookie="set")
UPDATE = Plan(rule=9, write="update")
SEND = Plan(rule=9, cookie="set")
KEEP = Plan(rule=9)
INSERT = Plan(rule=10, write="insert", cookie="set")


def decide(facts: Facts) -> Plan:
    """The first matching rule of the table in the module docstring."""
    began = facts.began
    if facts.status >= 500:
        return SERVER_ERROR
    if began is Began.STALE:
        # A login (an explicit new key) starts a fresh session; anything else is dropped.
        return INSERT if facts.has_key else STALE_KEY
    if not facts.loaded:
        return NOT_LOADED
    loaded_record = began in (Began.LIVE, Began.FOLLOWED)
    if not (
        facts.modified
        or facts.save_every_request
        or facts.old_secret
        or began is Began.FOLLOWED
        or facts.renewal_due
        or (facts.empty and began is not Began.NO_COOKIE)
    ):
        return LEAVE_ALONE
    if loaded_record and facts.rotated and facts.has_key:
        return ROTATE
    if loaded_record and facts.rotated:
        if not facts.empty:  # data written after the flush: a new session
            return FLUSH_THEN_INSERT
        return FLUSH
    if facts.empty:
        return DROP_COOKIE if began is not Began.NO_COOKIE else NOTHING_TO_DROP
    if loaded_record and facts.renewal_due:
        return RENEW_AND_UPDATE if _saves(facts) else RENEW
    if loaded_record:
        saves = _saves(facts)
        if saves or facts.old_secret or began is Began.FOLLOWED:
            return UPDATE_AND_SEND if saves else SEND
        return UPDATE if saves else KEEP
    return INSERT


def _saves(facts: Facts) -> bool:
    return facts.modified or facts.save_every_request
