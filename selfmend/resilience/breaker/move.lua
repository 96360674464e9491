-- Compare-and-set a transition: enter ARGV[3] only from state ARGV[1] at version ARGV[2].
-- KEYS: the breaker's hash, its window, its failures by process; ARGV[4]: now (epoch seconds).
-- Entering a state empties the window and the probe slots and raises the version.
-- Returns state, version, since, settings_version (after the attempt), then 1 if this call
-- made the transition, 0 if the breaker had moved on already, joined by "|".
local breaker, calls, failing = KEYS[1], KEYS[2], KEYS[3]
local from, expected, to, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local fields = redis.call("HMGET", breaker, "state", "version", "since", "settings_version")
local state, version = fields[1] or "closed", fields[2] or "0"
local settings_version = fields[4] or "0"

if state ~= from or version ~= expected then
  return table.concat({state, version, fields[3] or "0", settings_version, 0}, "|")
end

local moved = tostring(tonumber(version) + 1)
redis.call(
  "HSET", breaker, "state", to, "version", moved, "since", now,
  "probes", 0, "successes", 0, "failures", 0, "calls", 0
)
redis.call("DEL", calls, failing)
return table.concat({to, moved, now, settings_version, 1}, "|")
