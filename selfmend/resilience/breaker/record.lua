-- Record one call's outcome and return the breaker's state, in one round trip.
-- KEYS: the breaker's hash, its window (a list, newest first), its failures by process (hash).
-- ARGV: the version the call was admitted under, "1" if it failed, the process, window size.
-- Returns one string of fields joined by "|" (one bulk reply parses faster than an array):
-- state, version, since, settings_version, then "window", calls, failures, failing processes
-- (counted in a closed breaker), or "probe", successes (a half-open success), or "stale" (not
-- counted: admitted under another version, or a failed probe, which reopens the breaker).
--
-- The window is the hash's "calls" count plus, while it holds a failure, a list of entries:
-- "1<process>" for a failure and "s<n>" for a run of n successes. A window of successes only
-- is the count alone, so a healthy breaker's call reads the hash and writes nothing.
local breaker, calls, failing = KEYS[1], KEYS[2], KEYS[3]
local admitted, outcome, process, size = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local fields = redis.call(
  "HMGET", breaker, "state", "version", "since", "settings_version", "failures", "calls"
)
local state, version = fields[1] or "closed", fields[2] or "0"
local snapshot = state .. "|" .. version .. "|" .. (fields[3] or "0") .. "|" .. (fields[4] or "0")

if version ~= admitted or (state ~= "closed" and (state ~= "half_open" or outcome == "1")) then
  return snapshot .. "|stale"
end

if state == "half_open" then
  return snapshot .. "|probe|" .. redis.call("HINCRBY", breaker, "successes", 1)
end

local failures, length = tonumber(fields[5] or "0"), tonumber(fields[6] or "0")

if outcome == "0" and failures == 0 then  -- the healthy path: a count, and no list
  if length < size then
    length = redis.call("HINCRBY", breaker, "calls", 1)
  elseif length > size then  -- the window was made smaller
    length = size
    redis.call("HSET", breaker, "calls", size)
  end
  return snapshot .. "|window|" .. length .. "|0|0"
end

if failures == 0 and length > 0 then  -- the first failure: what came before is one run
  redis.call("RPUSH", calls, "s" .. length)
end
if outcome == "1" then
  redis.call("LPUSH", calls, "1" .. process)
  redis.call("HINCRBY", failing, process, 1)
  failures = failures + 1
else
  local newest = redis.call("LINDEX", calls, 0)
  if string.sub(newest, 1, 1) == "s" then
    redis.call("LSET", calls, 0, "s" .. (tonumber(string.sub(newest, 2)) + 1))
  else
    redis.call("LPUSH", calls, "s1")
  end
end
length = length + 1

while length > size do
  local oldest = redis.call("LINDEX", calls, -1)
  if string.sub(oldest, 1, 1) == "s" then
    local run, excess = tonumber(string.sub(oldest, 2)), length - size
    if run > excess then
      redis.call("LSET", calls, -1, "s" .. (run - excess))
      length = size
    else
      redis.call("RPOP", calls)
      length = length - run
    end
  else
    redis.call("RPOP", calls)
    local owner = string.sub(oldest, 2)
    if redis.call("HINCRBY", failing, owner, -1) <= 0 then
      redis.call("HDEL", failing, owner)
    end
    failures = failures - 1
    length = length - 1
  end
end

redis.call("HSET", breaker, "calls", length, "failures", failures)
local processes = 0
if failures == 0 then
  redis.call("DEL", calls, failing)
else
  processes = redis.call("HLEN", failing)
end
return snapshot .. "|window|" .. length .. "|" .. failures .. "|" .. processes
