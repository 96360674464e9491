-- Remove the batches a drain has stored from the head of the push list, in order, and only
-- while the head is still the next of them: another drain may have stored and removed them
-- already, and a batch pushed since must stay. Returns how many were removed.
local removed = 0
for _, payload in ipairs(ARGV) do
  if redis.call('LINDEX', KEYS[1], 0) ~= payload then
    break
  end
  redis.call('LPOP', KEYS[1])
  removed = removed + 1
end
return removed
