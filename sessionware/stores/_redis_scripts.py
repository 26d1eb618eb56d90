"""The Lua scripts behind RedisStore's writes: each write is one atomic script call.

Every session script starts with ``ARGV[1]`` = the caller's clock (``now``) and
``ARGV[2]`` = the store's prefix when the script keeps the per-user index itself (one
server), or ``''`` when the caller keeps it with separate scripts (a cluster, where the
index lives in another hash slot). The layout they share is described in
``_redis_layout``.

Write order keeps every key under a TTL even when a script fails half-way (Redis does
not roll a script back): a fresh hash gets its first field, then ``PEXPIREAT`` (on an
invalid time the hash is deleted again and the script fails), then the rest; an update
moves the TTL before it writes anything.

Lua's ``unpack`` is limited to about 8000 values, so long argument lists go to Redis in
chunks of ``CHUNK`` (even, so field/value pairs are never split).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

CHUNK = 7000


@dataclass(frozen=True, slots=True)
class Script:
    """A script's source and the SHA1 that ``EVALSHA`` names it by. ``durable`` scripts
    wait for replicas when the store asks it; the others only clean up what is already
    dead, so losing their effect in a failover loses nothing."""

    name: str
    source: bytes
    durable: bool = True
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source).hexdigest())


_PRELUDE = f"""
local now = tonumber(ARGV[1])
local prefix = ARGV[2]

local function call_in_chunks(command, name, list, first, last)
  for i = first, last, {CHUNK} do
    redis.call(command, name, unpack(list, i, math.min(i + {CHUNK} - 1, last)))
  end
end

-- What a hash holds at `now`: 'none' (absent or dead), 'live' (and its user, or false),
-- 'stale', 'moved' (and the pointer {{target, until}}), 'claim' (a renewal across hash
-- slots reserved it), or 'foreign' (not our layout).
local function state(name)
  local kind = redis.call('TYPE', name)['ok']
  if kind == 'none' then return 'none' end
  if kind ~= 'hash' then return 'foreign' end
  local meta = redis.call('HMGET', name, 'e', 'm', 'n', 'u', 'c')
  local until_at = tonumber(meta[1])
  if not until_at then return 'foreign' end
  if until_at <= now then return 'none' end
  if meta[2] == 'moved' and meta[3] then return 'moved', {{meta[3], meta[1]}} end
  if meta[2] == 'stale' then return 'stale' end
  if meta[2] == 'claim' then return 'claim' end
  if meta[2] or not tonumber(meta[5]) then return 'foreign' end
  return 'live', meta[4]
end

-- Set the TTL; on an invalid time fail the script, deleting the hash first if asked.
local function expire(name, at, drop_on_error)
  local done = redis.pcall('PEXPIREAT', name, at)
  if type(done) == 'table' and done.err then
    if drop_on_error then redis.call('DEL', name) end
    error(done)
  end
end

-- Replace whatever `name` holds by the pairs list[first..last], expiring at `at` (a
-- time already past deletes it at once: nothing more is written then).
local function fresh(name, at, list, first, last)
  redis.call('DEL', name)
  redis.call('HSET', name, list[first], list[first + 1])
  expire(name, at, true)
  if redis.call('EXISTS', name) == 1 then
    call_in_chunks('HSET', name, list, first + 2, last)
  end
end

local function index_of(user) return prefix .. 'u:{{' .. user .. '}}' end

-- Keep `index` (`ttl`: its PTTL before this write) alive until `at` ms or later, so it
-- outlives its members; an index kept without a TTL (written per slot) stays so.
local function outlive(index, ttl, at)
  if ttl == -1 then return end
  local time = redis.call('TIME')
  if ttl == -2 or time[1] * 1000 + time[2] / 1000 + ttl < tonumber(at) then
    redis.call('PEXPIREAT', index, at)
  end
end

-- List `name` (live until `at` ms) under `user`, first dropping up to two of the members
-- listed longest ago whose session is gone, so an index never piles up dead entries.
local function index_add(name, user, at)
  local index = index_of(user)
  for _, member in ipairs(redis.call('ZRANGE', index, 0, 1)) do
    if redis.call('EXISTS', prefix .. member) == 0 then redis.call('ZREM', index, member) end
  end
  local ttl = redis.call('PTTL', index)
  local time = redis.call('TIME')
  redis.call('ZADD', index, time[1] + time[2] / 1e6, string.sub(name, #prefix + 1))
  outlive(index, ttl, at)
end

-- After a write of `name`: it left the index of user `before` and joined that of `after`
-- (false: none), or stayed in the index of `after`, now live until `at` ms.
local function reindex(name, before, after, at)
  if prefix == '' then return end
  if before and before ~= after then
    redis.call('ZREM', index_of(before), string.sub(name, #prefix + 1))
  end
  if after and before ~= after then
    index_add(name, after, at)
  elseif after then
    local index = index_of(after)
    outlive(index, redis.call('PTTL', index), at)
  end
end

-- End the live record under `name`: a marker until `until_at`, or nothing if that passed.
local function finish(name, user, until_at, at, kind, target)
  if tonumber(until_at) <= now then
    redis.call('DEL', name)
  else
    local marker = {{'e', until_at, 'm', kind}}
    if target then marker[5] = 'n'; marker[6] = target end
    fresh(name, at, marker, 1, #marker)
  end
  reindex(name, user, false)
end
"""


def _session(name: str, body: str, durable: bool = True) -> Script:
    return Script(name, (_PRELUDE + body).encode(), durable)


# KEYS[1] hash. ARGV[3] PEXPIREAT ms; ARGV[4..] field/value pairs. 1 or 0 (held).
INSERT = _session(
    "insert",
    """
if state(KEYS[1]) ~= 'none' then return 0 end
fresh(KEYS[1], ARGV[3], ARGV, 4, #ARGV)
reindex(KEYS[1], false, redis.call('HGET', KEYS[1], 'u'), ARGV[3])
return 1
""",
)

# KEYS[1] hash. ARGV[3] PEXPIREAT ms; ARGV[4] '1' = drop every data field first; ARGV[5]
# n; ARGV[6..5+n] fields to delete; ARGV[6+n..] pairs to set. 1, 0, or the pointer.
UPDATE = _session(
    "update",
    """
local st, user = state(KEYS[1])
if st == 'moved' then return user end
if st ~= 'live' then return 0 end
expire(KEYS[1], ARGV[3], false)
if redis.call('EXISTS', KEYS[1]) == 0 then
  reindex(KEYS[1], user, false)
  return 1
end
if ARGV[4] == '1' then
  local doomed = {}
  for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(name, 1, 2) == 'd:' then doomed[#doomed + 1] = name end
  end
  call_in_chunks('HDEL', KEYS[1], doomed, 1, #doomed)
end
local deleted = tonumber(ARGV[5])
call_in_chunks('HDEL', KEYS[1], ARGV, 6, 5 + deleted)
call_in_chunks('HSET', KEYS[1], ARGV, 6 + deleted, #ARGV)
reindex(KEYS[1], user, redis.call('HGET', KEYS[1], 'u'), ARGV[3])
return 1
""",
)

# KEYS[1] hash. ARGV[3] stale until; ARGV[4] its ms. 1, 0, or the pointer.
DELETE = _session(
    "delete",
    """
local st, user = state(KEYS[1])
if st == 'moved' then return user end
if st ~= 'live' then return 0 end
finish(KEYS[1], user, ARGV[3], ARGV[4], 'stale')
return 1
""",
)

# The first step of a renewal across hash slots. KEYS[1] the new hash. ARGV[3] until;
# ARGV[4] its ms. Reserves an absent key with a claim marker: 1, or 0 if it is taken.
CLAIM = _session(
    "claim",
    """
if state(KEYS[1]) ~= 'none' then return 0 end
fresh(KEYS[1], ARGV[4], {'e', ARGV[3], 'm', 'claim'}, 1, 4)
return 1
""",
)

# The last step of a renewal across hash slots. KEYS[1] the new hash. ARGV[3] PEXPIREAT
# ms; ARGV[4..] the record's pairs. Fills the key if it still holds its claim: 1, else 0
# (a revocation replaced the claim by a stale marker).
FILL = _session(
    "fill",
    """
if state(KEYS[1]) ~= 'claim' then return 0 end
fresh(KEYS[1], ARGV[3], ARGV, 4, #ARGV)
return 1
""",
)

# Undoes a rotation's or a renewal's first step across hash slots when the old key
# turned out not to be live. KEYS[1] the new hash: deleted if it holds the record or the
# claim written by that step (a revocation's stale marker stays). 1 if deleted, else 0.
UNCLAIM = _session(
    "unclaim",
    """
local st = state(KEYS[1])
if st ~= 'live' and st ~= 'claim' then return 0 end
redis.call('DEL', KEYS[1])
return 1
""",
)

# KEYS[1] old hash, KEYS[2] new hash. ARGV[3] stale until; ARGV[4] its ms; ARGV[5] the
# new record's PEXPIREAT ms; ARGV[6..] its pairs. 1, 0, or the pointer.
ROTATE = _session(
    "rotate",
    """
local st, user = state(KEYS[1])
if st == 'moved' then return user end
if st ~= 'live' or state(KEYS[2]) ~= 'none' then return 0 end
fresh(KEYS[2], ARGV[5], ARGV, 6, #ARGV)
reindex(KEYS[2], false, redis.call('HGET', KEYS[2], 'u'), ARGV[5])
finish(KEYS[1], user, ARGV[3], ARGV[4], 'stale')
return 1
""",
)

_COPY = """
-- Copy the record under `source` to `name`, issued now (key_at and updated_at); the
-- PEXPIREAT milliseconds of both.
local function copy_to(name, source)
  local all = redis.call('HGETALL', source)
  local at = string.format('%.0f', math.ceil(tonumber(redis.call('HGET', source, 'e')) * 1000))
  for _, item in ipairs({'k', ARGV[1], 't', ARGV[1]}) do all[#all + 1] = item end
  fresh(name, at, all, 1, #all)
  return at
end
"""

# KEYS[1] old hash, KEYS[2] new hash. ARGV[3] grace until; ARGV[4] its ms; ARGV[5] the
# new key (the pointer's target). 1, 0, or the pointer.
RENEW = _session(
    "renew",
    _COPY
    + """
local st, user = state(KEYS[1])
if st == 'moved' then return user end
if st ~= 'live' or state(KEYS[2]) ~= 'none' then return 0 end
local at = copy_to(KEYS[2], KEYS[1])
reindex(KEYS[2], false, redis.call('HGET', KEYS[2], 'u'), at)
finish(KEYS[1], user, ARGV[3], ARGV[4], 'moved', ARGV[5])
return 1
""",
)

# The second step of a renewal across hash slots, once the new key is claimed. KEYS[1]
# old hash. ARGV[3] grace until; ARGV[4] its ms; ARGV[5] the new key. 0, the pointer, or
# {pairs}: the record as it was.
RENEW_OUT = _session(
    "renew_out",
    """
local st, user = state(KEYS[1])
if st == 'moved' then return user end
if st ~= 'live' then return 0 end
local record = redis.call('HGETALL', KEYS[1])
finish(KEYS[1], user, ARGV[3], ARGV[4], 'moved', ARGV[5])
return {record}
""",
)

# KEYS[1] hash. ARGV[3] stale until; ARGV[4] its ms; ARGV[5] the user; ARGV[6] '1' =
# leave a stale marker on an absent or claimed key too (a write of it may be on its
# way). 1 if a live record of that user was ended, the pointer of a renewed key, else 0.
REVOKE = _session(
    "revoke",
    """
local st, user = state(KEYS[1])
if st == 'live' and user == ARGV[5] then
  finish(KEYS[1], user, ARGV[3], ARGV[4], 'stale')
  return 1
end
if st == 'moved' then return user end
if (st == 'none' or st == 'claim') and ARGV[6] == '1' and tonumber(ARGV[3]) > now then
  fresh(KEYS[1], ARGV[4], {'e', ARGV[3], 'm', 'stale'}, 1, 4)
end
return 0
""",
)

# One server only. KEYS[1] the user's index, KEYS[2..] the hashes of all its members as
# the caller read them. ARGV[3] stale until; ARGV[4] its ms; ARGV[5] the user; ARGV[6]
# the key to spare (or ''). The number ended, or -1 if the index gained a member since.
REVOKE_ALL = _session(
    "revoke_all",
    """
local given = {}
for i = 2, #KEYS do given[string.sub(KEYS[i], #prefix + 1)] = true end
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not given[member] then return -1 end
end
local ended = 0
for i = 2, #KEYS do
  local member = string.sub(KEYS[i], #prefix + 1)
  if member ~= ARGV[6] then
    local st, user = state(KEYS[i])
    if st == 'live' and user == ARGV[5] then
      finish(KEYS[i], user, ARGV[3], ARGV[4], 'stale')
      ended = ended + 1
    else
      redis.call('ZREM', KEYS[1], member)
    end
  end
end
return ended
""",
)

# KEYS[1] hash. Deletes it if it is ours and dead at `now`: 1, else 0.
DROP_IF_DEAD = _session(
    "drop_if_dead",
    """
if redis.call('TYPE', KEYS[1])['ok'] ~= 'hash' then return 0 end
local meta = redis.call('HMGET', KEYS[1], 'e', 'm', 'u')
local until_at = tonumber(meta[1])
if not until_at or until_at > now then return 0 end
if not meta[2] then reindex(KEYS[1], meta[3], false) end
redis.call('DEL', KEYS[1])
return 1
""",
    durable=False,
)

# KEYS[1] a user's index. ARGV[1] the member to add, scored with the server's clock.
INDEX_ADD = Script(
    "index_add",
    b"""
local time = redis.call('TIME')
return redis.call('ZADD', KEYS[1], time[1] + time[2] / 1e6, ARGV[1])
""",
)

# KEYS[1] a user's index. ARGV[1] grace seconds; ARGV[2..] members found dead. Removes
# those (re)added longer ago than the grace: a member added since is never lost.
PRUNE = Script(
    "prune",
    b"""
local time = redis.call('TIME')
local cutoff = time[1] + time[2] / 1e6 - tonumber(ARGV[1])
local removed = 0
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if score and tonumber(score) <= cutoff then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
""",
    durable=False,
)
