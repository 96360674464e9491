-- Record calls' outcomes and return the breaker's state, in one round trip.
-- KEYS: the breaker's hash, its window (a list, newest first), its failures by process (hash).
-- ARGV: the version the calls were admitted under, how many succeeded, "1" if one more failed
-- after them, the process, window size.
-- Returns one string of fields joined by "|" (one bulk reply parses faster than an array):
-- state, version, since, settings_version, then "window", calls, failures, failing processes
-- (counted in a closed breaker), or "probe", successes (half-open successes), or "stale" (not
-- counted: admitted under another version, or a failed probe, which reopens the breaker).
--
-- The window is the hash's "calls" count plus, while it holds a failure, a list of entries:
-- "1<process>" for a failure and "s<n>" for a run of n successes. A window of successes only
-- is the count alone, so sending a healthy process's successes writes one field at most.
local breaker, calls, failing = KEYS[1], KEYS[2], KEYS[3]
local admitted, successes = ARGV[1], tonumber(ARGV[2])
local failed, process, size = ARGV[3] == "1", ARGV[4], tonumber(ARGV[5])
local fields = redis.call(
  "HMGET", breaker, "state", "version", "since", "settings_version", "failures", "calls"
)
local state, version = fields[1] or "closed", fields[2] or "0"
local snapshot = state .. "|" .. version .. "|" .. (fields[3] or "0") .. "|" .. (fields[4] or "0")

if version ~= admitted or (state ~= "closed" and (state ~= "half_open" or failed)) then
  return snapshot .. "|stale"
end

if state == "half_open" then
  return snapshot .. "|probe|" .. redis.call("HINCRBY", breaker, "successes", successes)
end

local failures, length = tonumber(fields[5] or "0"), tonumber(fields[6] or "0")

if not failed and failures == 0 then  -- the healthy path: a count, and no list
  local counted = math.min(length + successes, size)  -- smaller: the window was made smaller
  if counted ~= length then
    redis.call("HSET", breaker, "calls", counted)
  end
  return snapshot .. "|window|" .. counted .. "|0|0"
end

if failures == 0 and length > 0 then  -- the first failure: what came before is one run
  redis.call("RPUSH", calls, "s" .. length)
end
if successes > 0 then  -- they join the newest run of successes, or start one
  local newest = redis.call("LINDEX", calls, 0)
  if newest and string.sub(newest, 1, 1) == "s" then
    redis.call("LSET", calls, 0, "s" .. (tonumber(string.sub(newest, 2)) + successes))
  else
    redis.call("LPUSH", calls, "s" .. successes)
  end
end
if failed then
  redis.call("LPUSH", calls, "1" .. process)
  redis.call("HINCRBY", failing, process, 1)
  failures = failures + 1
  length = length + 1
end
length = length + successes

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
