"""How RedisStore lays a session out in Redis, and the Lua scripts that write it atomically.

Layout of one session (a Redis HASH at ``prefix + key``): meta fields ``c`` (created_at),
``e`` (expires_at) and optionally ``x`` (the custom expiry as JSON); one field ``d:<name>``
per session key, whose value is ``serializer.dumps({name: value})``. Data fields always
carry the ``d:`` prefix, so no session key can collide with a meta field.

Lua's ``unpack`` is limited to about 8000 values, so long argument lists are passed on to
Redis in chunks of ``CHUNK`` (even, so field/value pairs are never split).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from .._expiry import Expiry
from .._keys import key_fingerprint
from .._records import Change, Record
from .._serializers import Serializer

logger = logging.getLogger("sessionware")

CHUNK = 7000
DATA = b"d:"
Arg = bytes | str | int


class Corrupt(ValueError):
    """A hash under our prefix that is not a readable session record."""


_CALL_IN_CHUNKS = f"""
local function call_in_chunks(command, list, first, last)
  for i = first, last, {CHUNK} do
    redis.call(command, KEYS[1], unpack(list, i, math.min(i + {CHUNK} - 1, last)))
  end
end
"""

# KEYS[1] session hash; ARGV[1] PEXPIREAT milliseconds; ARGV[2..] field, value pairs.
CREATE = (
    _CALL_IN_CHUNKS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
call_in_chunks('HSET', ARGV, 2, #ARGV)
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
"""
)

# KEYS[1] session hash; ARGV[1] now; ARGV[2] PEXPIREAT milliseconds; ARGV[3] '1' = clear
# all data first; ARGV[4] custom expiry: 'keep', 'set' (it is among the pairs) or 'drop';
# ARGV[5] n, the number of data fields to delete; ARGV[6 .. 5+n] those fields;
# ARGV[6+n ..] field, value pairs to set (data fields and meta 'e', maybe 'x').
# Returns 0, writing nothing, unless a live record (a hash with expires_at > now) is there.
UPDATE = (
    _CALL_IN_CHUNKS
    + """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local expires = tonumber(redis.call('HGET', KEYS[1], 'e'))
if not expires or expires <= tonumber(ARGV[1]) then return 0 end
if ARGV[3] == '1' then
  local doomed = {}
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 2) == 'd:' then doomed[#doomed + 1] = field end
  end
  call_in_chunks('HDEL', doomed, 1, #doomed)
end
local deleted = tonumber(ARGV[5])
call_in_chunks('HDEL', ARGV, 6, 5 + deleted)
if ARGV[4] == 'drop' then redis.call('HDEL', KEYS[1], 'x') end
call_in_chunks('HSET', ARGV, 6 + deleted, #ARGV)
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS[1] session hash; ARGV[1] now. Deletes the hash only if its expires_at <= now, so a
# record renewed between the scan and this call survives.
DELETE_IF_EXPIRED = """
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local expires = tonumber(redis.call('HGET', KEYS[1], 'e'))
if expires and expires <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _pexpireat(expires_at: float) -> int:
    return math.ceil(expires_at * 1000)


def _field(name: str) -> bytes:
    return DATA + name.encode("utf-8", "surrogatepass")


def _expiry_json(expiry: Expiry) -> bytes:
    return json.dumps(expiry.to_json()).encode()


def create_args(record: Record, serializer: Serializer) -> list[Arg]:
    args: list[Arg] = [_pexpireat(record.expires_at)]
    args += [b"c", repr(record.created_at), b"e", repr(record.expires_at)]
    if record.expiry is not None:
        args += [b"x", _expiry_json(record.expiry)]
    for name, value in record.data.items():
        args += [_field(name), serializer.dumps({name: value})]
    return args


def update_args(change: Change, now: float, serializer: Serializer) -> list[Arg]:
    expiry = "keep"
    if change.expiry_changed:
        expiry = "drop" if change.expiry is None else "set"
    deleted = [_field(name) for name in change.deleted]
    args: list[Arg] = [repr(now), _pexpireat(change.expires_at), "1" if change.cleared else "0"]
    args += [expiry, len(deleted), *deleted, b"e", repr(change.expires_at)]
    if change.expiry is not None and change.expiry_changed:
        args += [b"x", _expiry_json(change.expiry)]
    for name, value in change.set.items():
        args += [_field(name), serializer.dumps({name: value})]
    return args


def is_past(expires: object, moment: str) -> bool:
    try:
        return isinstance(expires, bytes) and float(expires) <= float(moment)
    except ValueError:
        return False


def decode(raw: Mapping[bytes | str, bytes | str], serializer: Serializer) -> Record:
    data: dict[str, Any] = {}
    meta: dict[bytes, bytes] = {}
    for name, value in raw.items():
        if not isinstance(name, bytes) or not isinstance(value, bytes):
            raise Corrupt("the client decodes responses")
        if name.startswith(DATA):
            text = name[len(DATA) :].decode("utf-8", "surrogatepass")
            item = serializer.loads(value)
            if not isinstance(item, dict) or text not in item:
                raise Corrupt("a data field does not hold its key")
            data[text] = item[text]
        else:
            meta[name] = value
    if b"c" not in meta or b"e" not in meta:
        raise Corrupt("the record lacks its timestamps")
    expiry = Expiry.from_json(json.loads(meta[b"x"])) if b"x" in meta else None
    return Record(data, float(meta[b"c"]), float(meta[b"e"]), expiry)


def read(
    key: str, raw: Mapping[bytes | str, bytes | str] | None, now: float, serializer: Serializer
) -> Record | None:
    """The live record in an ``HGETALL`` reply (``None``: the key holds another type).

    Anything unreadable is absent, with one WARNING that names the session only by its
    fingerprint; it never raises.
    """
    if raw is not None and not raw:
        return None
    try:
        if raw is None:
            raise Corrupt("the key holds another Redis type")
        record = decode(raw, serializer)
    except Exception as exc:  # a custom serializer may raise anything on foreign bytes
        reason = str(exc) if isinstance(exc, Corrupt) else exc.__class__.__name__
        logger.warning(
            "sessionware: Redis session %s is unreadable (%s); treated as absent",
            key_fingerprint(key),
            reason,
        )
        return None
    return record if record.expires_at > now else None
