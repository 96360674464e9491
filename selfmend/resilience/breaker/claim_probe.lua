-- Take a half-open probe slot: granted only while the breaker is half-open at version ARGV[1]
-- and fewer than ARGV[2] slots are taken. KEYS[1]: the breaker's hash.
-- Returns state, version, since, settings_version, then 1 if granted, else 0, joined by "|".
local breaker = KEYS[1]
local fields = redis.call(
  "HMGET", breaker, "state", "version", "since", "settings_version", "probes"
)
local state, version = fields[1] or "closed", fields[2] or "0"
local granted = 0
local taken = tonumber(fields[5] or "0")
if state == "half_open" and version == ARGV[1] and taken < tonumber(ARGV[2]) then
  redis.call("HINCRBY", breaker, "probes", 1)
  granted = 1
end
return table.concat({state, version, fields[3] or "0", fields[4] or "0", granted}, "|")
