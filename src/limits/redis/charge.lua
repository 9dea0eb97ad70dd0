-- Charges the cost of a request the in-process fallback admitted while Redis was away
-- (key format sy:v1, see ../redis.rs), replayed once Redis answers again.
--   * Exactly once: the charge's marker makes a replay after a lost reply change nothing.
--   * Only into a figure that predates the request: a spend key seeded after the request
--     settled (Redis came back empty, or a new period began) was read from the ledger,
--     which already holds the request's record — unless the record was still in the
--     writer's queue at that moment (a window of one write batch: 50 ms, more under load).
--     Missing one then is preferred to counting it twice.
--   * Absent spend keys stay absent (see settle.lua).
--
-- KEYS  1-4 spend of the periods the request settled in (hash: usd, at)   5 the marker
-- ARGV  1 cost pico-USD   2 ttl ms of the marker   3 when the request settled (ms)
-- Reply 1 when this call charged, 0 when the charge was applied before

if not redis.call('SET', KEYS[5], '1', 'NX', 'PX', ARGV[2]) then
  return 0
end
local settled_at = tonumber(ARGV[3])
for i = 1, 4 do
  local seeded_at = redis.call('HGET', KEYS[i], 'at')
  if seeded_at and tonumber(seeded_at) <= settled_at then
    redis.call('HINCRBY', KEYS[i], 'usd', ARGV[1])
  end
end
return 1
